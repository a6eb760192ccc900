/*
 * shim.c: the kernel environment of blkfront.c, answered by the harness.
 *
 * Written anew for xbdspec (see docs/cdriver.md).  One driver instance per process (the
 * harness calls xbd_h_reset between scenarios).  No threads, no clock: every event comes
 * from an xbd_h_* call or from a harness callback.  panic, KASSERT, mutex recursion,
 * detected undefined behaviour, SIGFPE, SIGSEGV, SIGBUS and hangs longjmp back to the
 * innermost xbd_h_* entry point, which returns the fault kind (xbd_h_fault_message() has
 * the text): a wild access of the driver is its reported fault, not the harness's death.
 * The driver's blocks of a page or more that are not the world's pages end against an
 * unmapped fence, so that an index past such an array (the shadow's, by a hostile
 * response id) faults and is named, as AddressSanitizer names it in the sanitizer build.
 *
 * With world hooks set (xbd_h_set_world, see xbdspec/world/frontends/seed.py) the driver's
 * page memory, grants, notifications and completions go to the protocol-level world
 * instead: its pages are the world's memory, its grants and their ends are the world's
 * grant table's, its notifications the world's event channel, its biodone the world's
 * block layer.  Without them (the default, and after xbd_h_reset) the shim answers all of
 * it itself, as the harness of xbdspec/cdriver/ expects.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>

#include "xbd_shim.h"

#undef malloc
#undef free
#undef printf

/* ================================================================== faults */
enum { FAULT_NONE, FAULT_PANIC, FAULT_ASSERTION, FAULT_UNDEFINED, FAULT_HANG };
static sigjmp_buf *fault_jmp;
static int fault_kind;
static char fault_message[1024];

static void __attribute__((noreturn)) raise_fault(int kind, const char *fmt, va_list ap)
{
	fault_kind = kind;
	vsnprintf(fault_message, sizeof(fault_message), fmt, ap);
	if (fault_jmp == NULL) {
		fprintf(stderr, "xbd shim: fault outside an entry point: %s\n", fault_message);
		abort();
	}
	siglongjmp(*fault_jmp, 1);
}

static void __attribute__((noreturn)) fault(int kind, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	raise_fault(kind, fmt, ap);
}

void panic(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	raise_fault(FAULT_PANIC, fmt, ap);
}

void shim_kassert_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	raise_fault(FAULT_ASSERTION, fmt, ap);
}

void shim_undefined(const char *where, const char *what)
{
	fault(FAULT_UNDEFINED, "%s: %s", where, what);
}

static void on_sigfpe(int sig)
{
	(void)sig;
	fault_kind = FAULT_UNDEFINED;
	snprintf(fault_message, sizeof(fault_message), "SIGFPE: integer division by zero");
	if (fault_jmp == NULL)
		abort();
	siglongjmp(*fault_jmp, 1);
}

/*
 * Built with AddressSanitizer, the shim leaves SIGSEGV and SIGBUS to ASan (its report, with
 * the stack, is what the sanitized run is for) and allocates blocks of their exact size
 * (ASan's redzones are the fence); otherwise faults are contained below.
 */
#if defined(__SANITIZE_ADDRESS__)
#define SHIM_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SHIM_SANITIZED 1
#endif
#endif
#ifndef SHIM_SANITIZED
#define SHIM_SANITIZED 0
#endif

/*
 * Fenced blocks: a block of a page or more ends where an unmapped (PROT_NONE) reservation
 * of FENCE_BYTES begins, so that an access up to FENCE_BYTES past its end faults; the
 * fault handler names the block (and, for the shadow array, the index).  At most
 * MAX_FENCED are live (the softc of a faulted run is leaked on purpose, see xbd_h_reset;
 * beyond that a block is an ordinary one).
 */
#define FENCE_BYTES ((size_t)64 << 20)
#define MAX_FENCED 4096
struct fenced { char *base; size_t mapped; char *start; size_t size; };
static struct fenced fenced[MAX_FENCED];
static int nfenced;

static void *fenced_alloc(size_t size)
{
	size_t rounded = (size + 15) & ~(size_t)15;
	size_t pages = (rounded + PAGE_SIZE - 1) & ~(size_t)PAGE_MASK;
	char *base;
	if (SHIM_SANITIZED || nfenced >= MAX_FENCED)
		return NULL;
	base = mmap(NULL, pages + FENCE_BYTES, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		    -1, 0);
	if (base == MAP_FAILED)
		return NULL;
	if (mprotect(base, pages, PROT_READ | PROT_WRITE) != 0) {
		munmap(base, pages + FENCE_BYTES);
		return NULL;
	}
	fenced[nfenced].base = base;
	fenced[nfenced].mapped = pages + FENCE_BYTES;
	fenced[nfenced].start = base + pages - rounded; /* 16-byte aligned, ending at the fence */
	fenced[nfenced].size = size;
	return fenced[nfenced++].start;
}
static int fenced_free(void *addr)
{
	int i;
	for (i = 0; i < nfenced; i++) {
		if (fenced[i].start == addr) {
			munmap(fenced[i].base, fenced[i].mapped);
			fenced[i] = fenced[--nfenced];
			return 1;
		}
	}
	return 0;
}

/* A call into the harness (Python, through ctypes): a fault while it runs is not the driver's. */
static int in_harness;
#define HARNESS(call) __extension__({ in_harness++; __typeof__(call) harness_r_ = (call); \
			in_harness--; harness_r_; })
#define HARNESS_VOID(call) do { in_harness++; call; in_harness--; } while (0)

/* The handlers an entry point found installed before ours (what a fault that is not the
 * driver's goes back to). */
static struct sigaction original_segv, original_bus;
static void on_memory_fault(int sig, siginfo_t *info, void *context);
static struct xbd_softc *the_dev_softc(void); /* the driver's softc, or NULL */

static void say_where(char *out, size_t len, const char *addr)
{
	struct xbd_softc *sc = the_dev_softc();
	int i;
	out[0] = '\0';
	for (i = 0; i < nfenced; i++) {
		const struct fenced *f = &fenced[i];
		if (addr < f->start + f->size || addr >= f->base + f->mapped)
			continue;
		if (sc != NULL && (char *)sc->xbd_shadow == f->start) {
			snprintf(out, len, ": sc->xbd_shadow[%lu], past the end of its %zu-entry array "
				 "(an index out of its bounds)",
				 (unsigned long)((size_t)(addr - f->start) / sizeof(*sc->xbd_shadow)),
				 f->size / sizeof(*sc->xbd_shadow));
		} else {
			snprintf(out, len, ": %zu bytes past the end of a %zu-byte block of the driver's",
				 (size_t)(addr - (f->start + f->size)), f->size);
		}
		return;
	}
}

static void on_memory_fault(int sig, siginfo_t *info, void *context)
{
	const char *name = sig == SIGSEGV ? "SIGSEGV" : "SIGBUS";
	char *addr = info != NULL ? (char *)info->si_addr : NULL;
	char where[200];
	(void)context;
	if (fault_jmp == NULL || in_harness) {
		/* not the driver's: the handler that was there before takes the fault again */
		sigaction(SIGSEGV, &original_segv, NULL);
		sigaction(SIGBUS, &original_bus, NULL);
		return;
	}
	say_where(where, sizeof(where), addr);
	fault_kind = FAULT_UNDEFINED;
	if (info != NULL && info->si_code == SI_KERNEL)
		snprintf(fault_message, sizeof(fault_message),
			 "%s: an invalid memory access inside the driver, at an address the processor "
			 "refuses (non-canonical: far past any object)", name);
	else
		snprintf(fault_message, sizeof(fault_message),
			 "%s: an invalid memory access inside the driver, at address %p%s", name,
			 (void *)addr, where);
	siglongjmp(*fault_jmp, 1);
}

/* Install the entry's handlers; `old` receives what was there (restored by entry_end). */
static void entry_handlers(struct sigaction old[3])
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigfpe;
	sigaction(SIGFPE, &sa, &old[0]);
	if (SHIM_SANITIZED)
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_memory_fault;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old[1]);
	sigaction(SIGBUS, &sa, &old[2]);
	if (old[1].sa_sigaction != on_memory_fault)
		original_segv = old[1];
	if (old[2].sa_sigaction != on_memory_fault)
		original_bus = old[2];
}
static void entry_end(const struct sigaction old[3])
{
	sigaction(SIGFPE, &old[0], NULL);
	if (SHIM_SANITIZED)
		return;
	sigaction(SIGSEGV, &old[1], NULL);
	sigaction(SIGBUS, &old[2], NULL);
}

/* Run `call` as an entry point; fault_kind says how it ended. */
#define ENTRY_BODY(call)                                                     \
	do {                                                                 \
		sigjmp_buf here, *outer = fault_jmp;                         \
		struct sigaction old[3];                                     \
		int harness_outer = in_harness;                              \
		entry_handlers(old);                                         \
		in_harness = 0;                                              \
		fault_kind = FAULT_NONE;                                     \
		if (sigsetjmp(here, 1) == 0) {                               \
			fault_jmp = &here;                                   \
			call;                                                \
		}                                                            \
		fault_jmp = outer;                                           \
		in_harness = harness_outer;                                  \
		entry_end(old);                                              \
	} while (0)
/* Run `call` as an entry point: faults come back as the return value. */
#define ENTRY(call) do { ENTRY_BODY(call); return fault_kind; } while (0)

int xbd_h_fault_kind(void) { return fault_kind; }
const char *xbd_h_fault_message(void) { return fault_message; }

/* ================================================================== harness callbacks */
typedef int xs_read_cb_t(const char *path, char *buf, int buflen);
typedef int xs_write_cb_t(const char *path, const char *value);
typedef void log_cb_t(const char *line);
typedef int msleep_cb_t(void);
typedef void yield_cb_t(void);
static xs_read_cb_t *cb_xs_read;
static xs_write_cb_t *cb_xs_write;
static log_cb_t *cb_log;
static msleep_cb_t *cb_msleep;
static yield_cb_t *cb_yield;

void xbd_h_set_callbacks(xs_read_cb_t *r, xs_write_cb_t *w, log_cb_t *l, msleep_cb_t *s,
			 yield_cb_t *y)
{
	cb_xs_read = r;
	cb_xs_write = w;
	cb_log = l;
	cb_msleep = s;
	cb_yield = y;
}

/*
 * World hooks: each may be NULL (the shim's own behaviour).  pages_alloc returns zeroed,
 * page-aligned memory the world owns (NULL: none); pages_free says whether addr was such
 * memory (1: released) or not (0: the shim frees it).  grant tells the world that ref now
 * grants the page at addr; end_grant asks it to end ref (1: ended, 0: the back end still
 * maps it, FreeBSD's "g.e. still in use").  notify signals the back end on port; biodone
 * reports the completion of bio id (its status and data are read back with
 * xbd_h_bio_status / xbd_h_bio_data).
 */
struct xbd_world_hooks {
	void *(*pages_alloc)(size_t size);
	int (*pages_free)(void *addr);
	void (*grant)(unsigned ref, int domid, uintptr_t addr, int readonly);
	int (*end_grant)(unsigned ref);
	void (*notify)(unsigned port);
	void (*biodone)(int bio);
};
static struct xbd_world_hooks world;
void xbd_h_set_world(const struct xbd_world_hooks *hooks)
{
	if (hooks != NULL)
		world = *hooks;
	else
		memset(&world, 0, sizeof(world));
}
static void *world_pages(size_t size)
{
	return world.pages_alloc != NULL ? HARNESS(world.pages_alloc(size)) : NULL;
}
static int world_release(void *addr)
{
	return addr != NULL && world.pages_free != NULL && HARNESS(world.pages_free(addr));
}

static void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void log_line(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (cb_log != NULL)
		HARNESS_VOID(cb_log(buf));
}

/* ================================================================== kernel globals */
int hz = 1000;
RING_IDX shim_ring_index_start;
unsigned shim_front_ring_inits;
u_long maxphys = 1024 * 1024;
int xen_suspend_cancelled;
static int hvm_domain, pv_disks_disabled, mutex_recursion_fatal = 1, max_yields = 10000;
static int yields, wakeups, disk_resize_error;
struct malloc_type M_XENSTORE[1] = {{"xenstore"}};
struct malloc_type M_DEVBUF[1] = {{"devbuf"}};

void xbd_h_set_tunables(int hvm, int pv_disabled, int recursion_fatal, long maxphys_value,
			int yields_limit, int suspend_cancelled)
{
	hvm_domain = hvm;
	pv_disks_disabled = pv_disabled;
	mutex_recursion_fatal = recursion_fatal;
	maxphys = (u_long)maxphys_value;
	max_yields = yields_limit;
	xen_suspend_cancelled = suspend_cancelled;
}
int xen_hvm_domain(void) { return hvm_domain; }
void xbd_h_set_suspend_cancelled(int cancelled) { xen_suspend_cancelled = cancelled; }
int xen_pv_disks_disabled(void) { return pv_disks_disabled; }
void xbd_h_set_disk_resize_error(int error) { disk_resize_error = error; }

int shim_printf(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (cb_log != NULL)
		HARNESS_VOID(cb_log(buf));
	return n;
}

/* ------------------------------------------------------------------ memory */
/* malloc failure injection: site 0 = any M_NOWAIT malloc, counted down */
static int malloc_fail_countdown = -1, contig_fail_countdown = -1;
void xbd_h_fail_malloc(int malloc_after, int contig_after)
{
	malloc_fail_countdown = malloc_after;
	contig_fail_countdown = contig_after;
}
static int countdown(int *c)
{
	if (*c < 0)
		return 0;
	if (*c == 0) {
		*c = -1;
		return 1;
	}
	(*c)--;
	return 0;
}

void *shim_malloc(size_t size, struct malloc_type *type, int flags)
{
	void *p;
	(void)type;
	if ((flags & M_NOWAIT) && countdown(&malloc_fail_countdown))
		return NULL;
	/* Whole pages are page aligned, as FreeBSD's malloc makes them, and the world's pages
	 * when it lends them (the ring).  Any other block of a page or more (the shadow) ends
	 * against a fence (sanitized: its exact size, ASan's redzone after it), so that an
	 * index past its end faults instead of reading the next block or padding. */
	p = NULL;
	if (size >= PAGE_SIZE && (size & PAGE_MASK) == 0 && world.pages_alloc != NULL)
		p = world_pages(size);
	else if (size >= PAGE_SIZE && (size & PAGE_MASK) != 0 && (p = fenced_alloc(size)) != NULL)
		; /* whole pages are not fenced: a page lent to the back end stays mapped there
		   * after the driver frees it, as a grant mapping does in Xen */
	else if (size >= PAGE_SIZE && SHIM_SANITIZED) {
		if (posix_memalign(&p, PAGE_SIZE, size) != 0)
			p = NULL;
	} else if (size >= PAGE_SIZE)
		p = aligned_alloc(PAGE_SIZE, (size + PAGE_SIZE - 1) & ~(size_t)PAGE_MASK);
	else
		p = malloc(size == 0 ? 1 : size);
	if (p != NULL && (flags & M_ZERO))
		memset(p, 0, size);
	return p;
}
void shim_free(void *addr, struct malloc_type *type)
{
	(void)type;
	if (world_release(addr) || fenced_free(addr))
		return;
	free(addr);
}
void *contigmalloc(unsigned long size, struct malloc_type *type, int flags, vm_paddr_t low,
		   vm_paddr_t high, unsigned long alignment, vm_paddr_t boundary)
{
	void *p;
	(void)type; (void)low; (void)high; (void)alignment; (void)boundary;
	if (countdown(&contig_fail_countdown))
		return NULL;
	if (world.pages_alloc != NULL)
		p = world_pages((size + PAGE_SIZE - 1) & ~(unsigned long)PAGE_MASK);
	else
		p = aligned_alloc(PAGE_SIZE, (size + PAGE_SIZE - 1) & ~(unsigned long)PAGE_MASK);
	if (p != NULL && (flags & M_ZERO))
		memset(p, 0, size);
	return p;
}
void contigfree(void *addr, unsigned long size, struct malloc_type *type)
{
	(void)size; (void)type;
	if (world_release(addr))
		return;
	free(addr);
}

/* ------------------------------------------------------------------ mutex, sleep */
static int io_lock_recursions;
void mtx_init(struct mtx *m, const char *name, const char *type, int opts)
{
	(void)type; (void)opts;
	m->name = name;
	m->depth = 0;
	m->recursions = 0;
}
void mtx_destroy(struct mtx *m) { m->depth = 0; }
void mtx_lock(struct mtx *m)
{
	if (m->depth > 0) {
		m->recursions++;
		io_lock_recursions++;
		if (mutex_recursion_fatal)
			fault(FAULT_ASSERTION, "_mtx_lock_sleep: recursed on non-recursive mutex %s",
			      m->name);
	}
	m->depth++;
}
/* xbd_h_dump_polled: a dump is running, and xbd_int has run since the last release of
 * xbd_io_lock (set by shim_rmb, xbd_int's read barrier; cleared where xbd_int returns). */
static int dump_polling, dump_int_ran;
static void dump_after_int(void);
void shim_rmb(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (dump_polling)
		dump_int_ran = 1;
}
void mtx_unlock(struct mtx *m)
{
	struct xbd_softc *sc;
	if (m->depth <= 0)
		fault(FAULT_ASSERTION, "mtx_unlock: mutex %s not owned", m->name);
	m->depth--;
	/* xbd_int releases xbd_io_lock as its last statement (line 405): what follows is
	 * "after xbd_int" in xbd_quiesce */
	if (dump_int_ran && m->depth == 0 && (sc = the_dev_softc()) != NULL &&
	    m == &sc->xbd_io_lock) {
		dump_int_ran = 0;
		dump_after_int();
	}
}
void mtx_assert(struct mtx *m, int what)
{
	if (what == MA_OWNED && m->depth <= 0)
		fault(FAULT_ASSERTION, "mutex %s not owned", m->name);
	if (what == MA_NOTOWNED && m->depth > 0)
		fault(FAULT_ASSERTION, "mutex %s owned", m->name);
}
/*
 * msleep.  Inside a sleeper started with xbd_h_sleeper_start (the suspend entry point run on
 * its own stack), msleep drops the mutex and switches back to the harness: the test then
 * decides, over later events, whether the sleeper is woken or times out
 * (xbd_h_sleeper_continue).  Otherwise the harness's msleep callback answers at once (it
 * may deliver interrupts first).  Deterministic: a context switch, no threads.
 */
static ucontext_t sleeper_ctx, harness_ctx;
static char *sleeper_stack;
static int sleeper_running, sleeper_sleeping, sleeper_done, sleeper_answer, sleeper_woken;
static int sleeper_fault;
int msleep(void *chan, struct mtx *mtx, int pri, const char *wmesg, int timo)
{
	int depth, result;
	(void)chan; (void)pri; (void)wmesg; (void)timo;
	depth = mtx->depth;
	mtx->depth = 0;
	if (sleeper_running) {
		sigjmp_buf *mine = fault_jmp;
		sleeper_sleeping = 1;
		sleeper_woken = 0;
		swapcontext(&sleeper_ctx, &harness_ctx);
		fault_jmp = mine;
		sleeper_sleeping = 0;
		result = sleeper_answer;
	} else {
		result = cb_msleep != NULL ? HARNESS(cb_msleep()) : EWOULDBLOCK;
	}
	mtx->depth = depth;
	return result;
}
void wakeup(void *chan)
{
	(void)chan;
	wakeups++;
	if (sleeper_sleeping)
		sleeper_woken = 1;
}
void HYPERVISOR_yield(void)
{
	yields++;
	if (yields > max_yields)
		fault(FAULT_HANG, "HYPERVISOR_yield: yielded %d times and the busy queue never drained",
		      yields);
	if (cb_yield != NULL)
		HARNESS_VOID(cb_yield());
}

/* ------------------------------------------------------------------ newbus */
struct device {
	char node[256];
	char otherend[256];
	char type[32];
	int otherend_id;
	int unit;
	const char *desc;
	void *softc;
	int quiet;
};
static struct device the_dev;
extern driver_t *shim_driver;
static struct xbd_softc *the_dev_softc(void) { return the_dev.softc; }

int bus_generic_shutdown(device_t dev) { (void)dev; return 0; }
void *device_get_softc(device_t dev) { return dev->softc; }
static int units_used[4096];
int device_set_unit(device_t dev, int unit)
{
	if (unit >= 0 && unit < 4096) {
		if (units_used[unit]) {
			log_line("device_set_unit: xbd%d already in use", unit);
			return EEXIST;
		}
		units_used[unit] = 1;
	}
	dev->unit = unit;
	return 0;
}
void device_set_desc(device_t dev, const char *desc) { dev->desc = desc; }
const char *device_get_desc(device_t dev) { return dev->desc; }
void device_quiet(device_t dev) { dev->quiet = 1; }
device_t device_get_parent(device_t dev) { (void)dev; return NULL; }
int bus_print_child_footer(device_t parent, device_t child)
{
	(void)parent; (void)child;
	return 0;
}
int device_printf(device_t dev, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_line("xbd%d: %s", dev->unit, buf);
	return 0;
}

/* ------------------------------------------------------------------ sysctl, sbuf */
static struct sysctl_ctx_list the_ctx;
static struct sysctl_oid the_tree;
static shim_sysctl_handler_t *features_handler;
static void *features_arg;
struct sysctl_ctx_list *device_get_sysctl_ctx(device_t dev) { (void)dev; return &the_ctx; }
struct sysctl_oid *device_get_sysctl_tree(device_t dev) { (void)dev; return &the_tree; }
void shim_sysctl_add_uint(const char *name, unsigned *ptr) { (void)name; (void)ptr; }
void shim_sysctl_add_proc(const char *name, void *arg1, shim_sysctl_handler_t *handler)
{
	if (strcmp(name, "features") == 0) {
		features_handler = handler;
		features_arg = arg1;
	}
}
int sysctl_wire_old_buffer(struct sysctl_req *req, size_t len)
{
	(void)req; (void)len;
	return 0;
}
int shim_sysctl_out(struct sysctl_req *req, const void *p, size_t len)
{
	size_t n = len < req->len ? len : req->len;
	memcpy(req->buf, p, n);
	return 0;
}
/* hw.xbd.N.features into buf; the fault kind */
int xbd_h_sysctl_features(char *buf, int len)
{
	struct sysctl_req req = {buf, (size_t)len};
	memset(buf, 0, (size_t)len);
	if (features_handler == NULL)
		return -1;
	ENTRY(features_handler(&the_tree, features_arg, 0, &req));
}
struct sbuf *sbuf_new(struct sbuf *s, char *buf, int length, int flags)
{
	(void)flags;
	s->s_buf = buf;
	s->s_size = length;
	s->s_len = 0;
	s->s_error = 0;
	if (length > 0)
		buf[0] = '\0';
	return s;
}
int sbuf_printf(struct sbuf *s, const char *fmt, ...)
{
	va_list ap;
	int n;
	if (s->s_error)
		return -1;
	va_start(ap, fmt);
	n = vsnprintf(s->s_buf + s->s_len, (size_t)(s->s_size - s->s_len), fmt, ap);
	va_end(ap);
	if (n < 0 || s->s_len + n >= s->s_size) {
		s->s_error = ENOMEM;
		s->s_len = s->s_size - 1;
		return -1;
	}
	s->s_len += n;
	return 0;
}
int sbuf_finish(struct sbuf *s) { return s->s_error; }
ssize_t sbuf_len(struct sbuf *s) { return s->s_error ? -1 : s->s_len; }

/* ------------------------------------------------------------------ bio, disk */
#define MAX_BIOS 65536
static struct bio *bios[MAX_BIOS];
static int nbios;
static int completed[MAX_BIOS * 2];
static int ncompleted;

void bioq_init(struct bio_queue_head *head)
{
	TAILQ_INIT(&head->queue);
	head->total = 0;
}
void bioq_insert_tail(struct bio_queue_head *head, struct bio *bp)
{
	TAILQ_INSERT_TAIL(&head->queue, bp, bio_queue);
	head->total++;
}
void bioq_insert_head(struct bio_queue_head *head, struct bio *bp)
{
	TAILQ_INSERT_HEAD(&head->queue, bp, bio_queue);
	head->total++;
}
void bioq_remove(struct bio_queue_head *head, struct bio *bp)
{
	TAILQ_REMOVE(&head->queue, bp, bio_queue);
	head->total--;
}
struct bio *bioq_first(struct bio_queue_head *head) { return TAILQ_FIRST(&head->queue); }
void biodone(struct bio *bp)
{
	bp->shim_done_count++;
	bp->bio_flags |= BIO_DONE;
	if (ncompleted < MAX_BIOS * 2)
		completed[ncompleted++] = bp->shim_id;
	if (world.biodone != NULL)
		HARNESS_VOID(world.biodone(bp->shim_id));
}
void biofinish(struct bio *bp, void *stat, int error)
{
	(void)stat;
	bp->bio_error = error;
	bp->bio_flags |= BIO_ERROR;
	bp->bio_resid = bp->bio_bcount;
	biodone(bp);
}
static struct disk *disks[16];
static int ndisks;
struct disk *disk_alloc(void)
{
	struct disk *d = calloc(1, sizeof(*d));
	if (ndisks < 16)
		disks[ndisks++] = d;
	return d;
}
void disk_create(struct disk *disk, int version) { (void)version; disk->shim_created = 1; }
void disk_destroy(struct disk *disk) { disk->shim_destroyed = 1; }
void disk_gone(struct disk *disk) { disk->shim_gone = 1; }
int disk_resize(struct disk *disk, int flag)
{
	int error = disk_resize_error;
	(void)flag;
	disk_resize_error = 0;
	disk->shim_resizes++;
	return error;
}
void disk_err(struct bio *bp, const char *what, int blkdone, int nl)
{
	(void)blkdone; (void)nl;
	log_line("%s cmd=%d blkno=%jd", what, bp->bio_cmd, (intmax_t)bp->bio_pblkno);
}

/* ------------------------------------------------------------------ bus_dma */
enum { DMA_IMMEDIATE, DMA_DEFERRED, DMA_FAIL, DMA_FAIL_ENOMEM };
struct shim_dma_tag { bus_size_t maxsize; int nsegments; void *lockarg; int destroyed; };
struct shim_dma_map { int loaded; int last_sync; };
#define MAX_DEFERRED 1024
#define MAX_MODES 1024
struct deferred_load {
	bus_dma_tag_t tag;
	bus_dmamap_t map;
	bus_dmamap_callback_t *callback;
	void *arg;
	int nsegs;
	bus_dma_segment_t segs[300];
};
static struct deferred_load *deferred[MAX_DEFERRED];
static int ndeferred;
static int dma_modes[MAX_MODES], ndma_modes, dma_default_mode, dma_loads;
static int fail_tag_create, fail_map_create_after = -1;

void xbd_h_dma_push_mode(int mode)
{
	if (ndma_modes < MAX_MODES)
		dma_modes[ndma_modes++] = mode;
}
void xbd_h_dma_set_default(int mode) { dma_default_mode = mode; }
void xbd_h_dma_clear_modes(void) { ndma_modes = 0; }
void xbd_h_dma_fail_create(int tag_error, int map_after)
{
	fail_tag_create = tag_error;
	fail_map_create_after = map_after;
}
int xbd_h_dma_deferred_count(void) { return ndeferred; }
/* The index of the deferred load whose callback argument is command `cmd`, or -1. */
int xbd_h_dma_find_command(int cmd)
{
	struct xbd_softc *sc = the_dev.softc;
	int i;
	if (sc == NULL || sc->xbd_shadow == NULL || cmd < 0 || cmd >= (int)sc->xbd_max_requests)
		return -1;
	for (i = 0; i < ndeferred; i++)
		if (deferred[i]->arg == &sc->xbd_shadow[cmd])
			return i;
	return -1;
}
int xbd_h_dma_loads(void) { return dma_loads; }
static int next_dma_mode(void)
{
	int mode;
	if (ndma_modes == 0)
		return dma_default_mode;
	mode = dma_modes[0];
	memmove(dma_modes, dma_modes + 1, sizeof(int) * (size_t)(ndma_modes - 1));
	ndma_modes--;
	return mode;
}

bus_dma_tag_t bus_get_dma_tag(device_t dev) { (void)dev; return NULL; }
void busdma_lock_mutex(void *arg, int op) { (void)arg; (void)op; }
int bus_dma_tag_create(bus_dma_tag_t parent, bus_size_t alignment, bus_addr_t boundary,
		       bus_addr_t lowaddr, bus_addr_t highaddr, bus_dma_filter_t *filter,
		       void *filterarg, bus_size_t maxsize, int nsegments, bus_size_t maxsegsz,
		       int flags, bus_dma_lock_t *lockfunc, void *lockfuncarg,
		       bus_dma_tag_t *dmat)
{
	struct shim_dma_tag *tag;
	(void)parent; (void)alignment; (void)boundary; (void)lowaddr; (void)highaddr;
	(void)filter; (void)filterarg; (void)maxsegsz; (void)flags; (void)lockfunc;
	if (fail_tag_create) {
		int error = fail_tag_create;
		fail_tag_create = 0;
		return error;
	}
	tag = calloc(1, sizeof(*tag));
	tag->maxsize = maxsize;
	tag->nsegments = nsegments;
	tag->lockarg = lockfuncarg;
	*dmat = tag;
	return 0;
}
int bus_dma_tag_destroy(bus_dma_tag_t dmat)
{
	if (dmat != NULL)
		dmat->destroyed = 1;
	return 0;
}
int bus_dmamap_create(bus_dma_tag_t dmat, int flags, bus_dmamap_t *mapp)
{
	(void)dmat; (void)flags;
	if (fail_map_create_after == 0) {
		fail_map_create_after = -1;
		return ENOMEM;
	}
	if (fail_map_create_after > 0)
		fail_map_create_after--;
	*mapp = calloc(1, sizeof(**mapp));
	return 0;
}
int bus_dmamap_destroy(bus_dma_tag_t dmat, bus_dmamap_t map)
{
	(void)dmat;
	free(map);
	return 0;
}
static int load(bus_dma_tag_t tag, bus_dmamap_t map, void *buf, bus_size_t len,
		bus_dmamap_callback_t *callback, void *arg)
{
	bus_dma_segment_t segs[300];
	int nsegs = 0, mode;
	uintptr_t addr = (uintptr_t)buf, end = addr + len;
	dma_loads++;
	while (buf != NULL && addr < end && nsegs < 300) {
		uintptr_t chunk = PAGE_SIZE - (addr & PAGE_MASK);
		if (chunk > end - addr)
			chunk = end - addr;
		segs[nsegs].ds_addr = addr;
		segs[nsegs].ds_len = chunk;
		nsegs++;
		addr += chunk;
	}
	mode = next_dma_mode();
	if (nsegs > tag->nsegments) {
		callback(arg, segs, 0, EFBIG);
		return 0;
	}
	if (mode == DMA_DEFERRED && ndeferred < MAX_DEFERRED) {
		struct deferred_load *d = calloc(1, sizeof(*d));
		d->tag = tag;
		d->map = map;
		d->callback = callback;
		d->arg = arg;
		d->nsegs = nsegs;
		memcpy(d->segs, segs, sizeof(segs[0]) * (size_t)nsegs);
		deferred[ndeferred++] = d;
		return EINPROGRESS;
	}
	if (mode == DMA_FAIL) {
		callback(arg, segs, 0, EFBIG);
		return 0;
	}
	if (mode == DMA_FAIL_ENOMEM) {
		callback(arg, segs, 0, ENOMEM);
		return ENOMEM;
	}
	map->loaded = 1;
	callback(arg, segs, nsegs, 0);
	return 0;
}
int bus_dmamap_load(bus_dma_tag_t dmat, bus_dmamap_t map, void *buf, bus_size_t buflen,
		    bus_dmamap_callback_t *callback, void *callback_arg, int flags)
{
	(void)flags;
	return load(dmat, map, buf, buflen, callback, callback_arg);
}
int bus_dmamap_load_bio(bus_dma_tag_t dmat, bus_dmamap_t map, struct bio *bio,
			bus_dmamap_callback_t *callback, void *callback_arg, int flags)
{
	(void)flags;
	return load(dmat, map, bio->bio_data, (bus_size_t)bio->bio_bcount, callback,
		    callback_arg);
}
void bus_dmamap_sync(bus_dma_tag_t dmat, bus_dmamap_t map, int op)
{
	(void)dmat;
	map->last_sync = op;
}
void bus_dmamap_unload(bus_dma_tag_t dmat, bus_dmamap_t map)
{
	(void)dmat;
	map->loaded = 0;
}
static void run_deferred_body(int index, int error)
{
	struct deferred_load *d = deferred[index];
	struct mtx *lock = d->tag->lockarg;
	memmove(deferred + index, deferred + index + 1,
		sizeof(deferred[0]) * (size_t)(ndeferred - index - 1));
	ndeferred--;
	d->map->loaded = 1;
	if (lock != NULL)
		mtx_lock(lock);
	if (error)
		d->callback(d->arg, d->segs, 0, error);
	else
		d->callback(d->arg, d->segs, d->nsegs, 0);
	if (lock != NULL && lock->depth > 0)
		mtx_unlock(lock);
	free(d);
}
/* Run deferred load `index`'s callback (late failure if error != 0); -1 if none. */
int xbd_h_run_deferred(int index, int error)
{
	if (index < 0 || index >= ndeferred)
		return -1;
	ENTRY(run_deferred_body(index, error));
}

/* ------------------------------------------------------------------ event channel */
struct shim_intr { unsigned port; };
static struct shim_intr the_intr;
static driver_intr_t *intr_handler;
static void *intr_arg;
static int intr_bound, intr_pending, next_port = 5, fail_next_bind;
static int to_backend, to_frontend, delivered;
int xen_intr_alloc_and_bind_local_port(device_t dev, u_int remote_domain,
				       driver_filter_t filter, driver_intr_t handler, void *arg,
				       int flags, xen_intr_handle_t *handlep)
{
	(void)dev; (void)remote_domain; (void)filter; (void)flags;
	if (fail_next_bind) {
		int error = fail_next_bind;
		fail_next_bind = 0;
		return error;
	}
	the_intr.port = (unsigned)next_port++;
	intr_handler = handler;
	intr_arg = arg;
	intr_bound = 1;
	*handlep = &the_intr;
	return 0;
}
void xen_intr_unbind(xen_intr_handle_t *handlep)
{
	*handlep = NULL;
	intr_bound = 0;
	intr_handler = NULL;
	intr_pending = 0;
}
void xen_intr_signal(xen_intr_handle_t handle)
{
	to_backend++;
	if (world.notify != NULL)
		HARNESS_VOID(world.notify(handle->port));
}
unsigned xen_intr_port(xen_intr_handle_t handle) { return handle->port; }
/* Run the front end's handler if the back end notified it; -1 if nothing pending. */
int xbd_h_deliver_interrupt(int force)
{
	if (intr_handler == NULL || (!intr_pending && !force))
		return -1;
	intr_pending = 0;
	delivered++;
	ENTRY(intr_handler(intr_arg));
}
int xbd_h_evtchn_counter(int which)
{
	switch (which) {
	case 0: return to_backend;
	case 1: return to_frontend;
	case 2: return delivered;
	case 3: return intr_pending;
	case 4: return intr_bound ? (int)the_intr.port : -1;
	case 5: return wakeups;
	case 6: return yields;
	case 7: return io_lock_recursions;
	}
	return -1;
}

/* ------------------------------------------------------------------ grant table */
/* GTF_permit_access, GTF_readonly, GNTTAB_NR_RESERVED_ENTRIES: Xen's grant_table.h */
#define NR_RESERVED_ENTRIES GNTTAB_NR_RESERVED_ENTRIES
#define GNTTAB_LIST_END 0xffffffff
static int nr_grants;
static grant_ref_t *gnt_next;     /* free-list / private-list links */
static unsigned long *gnt_frame;
static int *gnt_domid, *gnt_flags;
static grant_ref_t gnt_free_head = GNTTAB_LIST_END;
static int gnt_free_count;
static struct gnttab_free_callback *gnt_callbacks;
static int gnt_callbacks_fired;

static void check_ref(grant_ref_t ref, const char *where)
{
	if (ref >= (grant_ref_t)nr_grants)
		fault(FAULT_UNDEFINED, "%s: shared[%u] outside the grant table", where, ref);
}
static void do_free_callbacks(void)
{
	struct gnttab_free_callback *callback = gnt_callbacks, *next;
	gnt_callbacks = NULL;
	while (callback != NULL) {
		next = callback->next;
		if (gnt_free_count >= callback->count) {
			callback->next = NULL;
			gnt_callbacks_fired++;
			callback->fn(callback->arg);
		} else {
			callback->next = gnt_callbacks;
			gnt_callbacks = callback;
		}
		callback = next;
	}
}
static int gnt_defer_callbacks;       /* callbacks wait for xbd_h_gnttab_fire_ready_callback */
static grant_ref_t gnt_reserve[64];   /* ring grants come from here first */
static int gnt_nreserve;
static void check_free_callbacks(void)
{
	if (gnt_callbacks != NULL && !gnt_defer_callbacks)
		do_free_callbacks();
}
static void put_free_entry(grant_ref_t ref)
{
	gnt_next[ref] = gnt_free_head;
	gnt_free_head = ref;
	gnt_free_count++;
}
int gnttab_alloc_grant_references(uint16_t count, grant_ref_t *head)
{
	grant_ref_t ref, tail;
	int i;
	if (gnt_free_count < count)
		return ENOSPC;
	if (count == 0) {
		*head = GNTTAB_LIST_END;
		return 0;
	}
	ref = tail = gnt_free_head;
	for (i = 1; i < count; i++)
		tail = gnt_next[tail];
	gnt_free_head = gnt_next[tail];
	gnt_next[tail] = GNTTAB_LIST_END;
	gnt_free_count -= count;
	*head = ref;
	return 0;
}
void gnttab_free_grant_references(grant_ref_t head)
{
	grant_ref_t ref;
	int count = 1;
	if (head == GNTTAB_LIST_END)
		return;
	check_ref(head, "gnttab_free_grant_references");
	ref = head;
	while (gnt_next[ref] != GNTTAB_LIST_END) {
		ref = gnt_next[ref];
		check_ref(ref, "gnttab_free_grant_references");
		count++;
	}
	gnt_next[ref] = gnt_free_head;
	gnt_free_head = head;
	gnt_free_count += count;
	check_free_callbacks();
}
int gnttab_claim_grant_reference(grant_ref_t *head)
{
	grant_ref_t g = *head;
	if (g == GNTTAB_LIST_END)
		return -1;
	check_ref(g, "gnttab_claim_grant_reference");
	*head = gnt_next[g];
	return (int)g;
}
void gnttab_grant_foreign_access_ref(grant_ref_t ref, domid_t domid, unsigned long frame,
				     int readonly)
{
	check_ref(ref, "gnttab_grant_foreign_access_ref");
	gnt_frame[ref] = frame;
	gnt_domid[ref] = domid;
	gnt_flags[ref] = GTF_permit_access | (readonly ? GTF_readonly : 0);
	if (world.grant != NULL)
		HARNESS_VOID(world.grant(ref, domid, (uintptr_t)frame << PAGE_SHIFT, readonly));
}
int gnttab_grant_foreign_access(domid_t domid, unsigned long frame, int readonly,
				grant_ref_t *result)
{
	grant_ref_t ref;
	if (gnt_nreserve > 0) {
		ref = gnt_reserve[--gnt_nreserve];
		gnttab_grant_foreign_access_ref(ref, domid, frame, readonly);
		*result = ref;
		return 0;
	}
	if (gnttab_alloc_grant_references(1, &ref) != 0)
		return ENOSPC;
	gnttab_grant_foreign_access_ref(ref, domid, frame, readonly);
	*result = ref;
	return 0;
}
int gnttab_end_foreign_access_ref(grant_ref_t ref)
{
	check_ref(ref, "gnttab_end_foreign_access_ref");
	/* an entry that grants nothing ends at once, as FreeBSD's cmpxchg on 0 flags does */
	if (world.end_grant != NULL && (gnt_flags[ref] & GTF_permit_access) &&
	    !HARNESS(world.end_grant(ref))) {
		log_line("gnttab_end_foreign_access_ref: WARNING: g.e. still in use!");
		return 0;
	}
	gnt_flags[ref] = 0;
	return 1;
}
void gnttab_end_foreign_access_references(u_int count, grant_ref_t *refs)
{
	u_int i;
	if (count == 0)
		return;
	for (i = 0; i < count; i++) {
		if (gnttab_end_foreign_access_ref(refs[i]))
			put_free_entry(refs[i]);
	}
	check_free_callbacks();
}
void gnttab_request_free_callback(struct gnttab_free_callback *callback,
				  void (*fn)(void *), void *arg, uint16_t count)
{
	struct gnttab_free_callback *c;
	if (callback->next != NULL)
		return;
	for (c = gnt_callbacks; c != NULL; c = c->next)
		if (c == callback)
			fault(FAULT_HANG, "gnttab_request_free_callback: callback registered twice "
					  "as the list's last entry: the list becomes circular");
	callback->fn = fn;
	callback->arg = arg;
	callback->count = count;
	callback->next = gnt_callbacks;
	gnt_callbacks = callback;
	check_free_callbacks();
}
void gnttab_cancel_free_callback(struct gnttab_free_callback *callback)
{
	struct gnttab_free_callback **pcb;
	for (pcb = &gnt_callbacks; *pcb != NULL; pcb = &(*pcb)->next) {
		if (*pcb == callback) {
			*pcb = callback->next;
			break;
		}
	}
}
static void gnttab_reset(int entries)
{
	int i;
	free(gnt_next); free(gnt_frame); free(gnt_domid); free(gnt_flags);
	nr_grants = entries;
	gnt_next = calloc((size_t)entries, sizeof(*gnt_next));
	gnt_frame = calloc((size_t)entries, sizeof(*gnt_frame));
	gnt_domid = calloc((size_t)entries, sizeof(*gnt_domid));
	gnt_flags = calloc((size_t)entries, sizeof(*gnt_flags));
	gnt_free_head = GNTTAB_LIST_END;
	gnt_free_count = 0;
	gnt_callbacks = NULL;
	gnt_callbacks_fired = 0;
	for (i = entries - 1; i >= NR_RESERVED_ENTRIES; i--)
		put_free_entry((grant_ref_t)i);
}
int xbd_h_gnttab_free_count(void) { return gnt_free_count; }
/* The conformance adapter's grant table: `reserve` references set aside for the ring,
 * free callbacks deferred to an environment event (see xbdspec/cdriver.py). */
void xbd_h_gnttab_configure(int entries, int reserve, int defer_callbacks)
{
	int i;
	gnttab_reset(entries);
	gnt_nreserve = 0;
	for (i = 0; i < reserve && i < 64; i++) {
		grant_ref_t ref;
		if (gnttab_alloc_grant_references(1, &ref) != 0)
			break;
		gnt_reserve[gnt_nreserve++] = ref;
	}
	gnt_defer_callbacks = defer_callbacks;
}
static int fire_ready_callback_body(void)
{
	struct gnttab_free_callback **pcb, *callback;
	for (pcb = &gnt_callbacks; *pcb != NULL; pcb = &(*pcb)->next) {
		callback = *pcb;
		if (gnt_free_count >= callback->count) {
			*pcb = callback->next;
			callback->next = NULL;
			gnt_callbacks_fired++;
			callback->fn(callback->arg);
			return 1;
		}
	}
	return 0;
}
static int fired;
/* Run the first registered callback whose count is free; the fault kind (-1: none ran). */
int xbd_h_gnttab_fire_ready_callback(void)
{
	fired = 0;
	ENTRY_BODY(fired = fire_ready_callback_body());
	if (fault_kind == FAULT_NONE && !fired)
		return -1;
	return fault_kind;
}
int xbd_h_gnttab_callbacks_fired(void) { return gnt_callbacks_fired; }
int xbd_h_gnttab_callbacks_pending(void)
{
	int n = 0;
	struct gnttab_free_callback *c;
	for (c = gnt_callbacks; c != NULL; c = c->next)
		n++;
	return n;
}
/* The harness (another user of the pool) takes `count` references: a shortage. */
static grant_ref_t stolen = GNTTAB_LIST_END;
int xbd_h_gnttab_take(int count)
{
	grant_ref_t head;
	if (gnttab_alloc_grant_references((uint16_t)count, &head) != 0)
		return -1;
	if (head != GNTTAB_LIST_END) {
		grant_ref_t ref = head;
		while (gnt_next[ref] != GNTTAB_LIST_END)
			ref = gnt_next[ref];
		gnt_next[ref] = stolen;
		stolen = head;
	}
	return 0;
}
/* ...and gives them back (free callbacks run, outside the driver's lock). */
int xbd_h_gnttab_give_back(void)
{
	grant_ref_t head = stolen;
	stolen = GNTTAB_LIST_END;
	ENTRY(gnttab_free_grant_references(head));
}
/* The back end's view of a grant: the page, or NULL if not granted as asked. */
static unsigned char *map_grant(grant_ref_t ref, int domid, int write)
{
	if (ref >= (grant_ref_t)nr_grants)
		return NULL;
	if (!(gnt_flags[ref] & GTF_permit_access) || gnt_domid[ref] != domid)
		return NULL;
	if (write && (gnt_flags[ref] & GTF_readonly))
		return NULL;
	return (unsigned char *)(uintptr_t)(gnt_frame[ref] << PAGE_SHIFT);
}

/* ------------------------------------------------------------------ xenstore, xenbus */
static char *xs_join(const char *dir, const char *node)
{
	size_t n = strlen(dir) + strlen(node) + 2;
	char *path = malloc(n);
	if (node[0] == '\0')
		snprintf(path, n, "%s", dir);
	else
		snprintf(path, n, "%s/%s", dir, node);
	return path;
}
/* The value, malloc'ed, or NULL (ENOENT). */
static char *xs_fetch(const char *dir, const char *node)
{
	char buf[4096];
	char *path = xs_join(dir, node);
	int n = cb_xs_read != NULL ? HARNESS(cb_xs_read(path, buf, (int)sizeof(buf))) : -1;
	free(path);
	if (n < 0)
		return NULL;
	if (n >= (int)sizeof(buf))
		n = (int)sizeof(buf) - 1;
	buf[n] = '\0';
	return strdup(buf);
}
int xs_read(struct xs_transaction t, const char *dir, const char *node, u_int *len,
	    void **result)
{
	char *value;
	(void)t;
	value = xs_fetch(dir, node);
	if (value == NULL)
		return ENOENT;
	if (len != NULL)
		*len = (u_int)strlen(value);
	*result = value;
	return 0;
}
int xs_scanf(struct xs_transaction t, const char *dir, const char *node, int *scancountp,
	     const char *fmt, ...)
{
	va_list ap;
	int ret;
	char *val;
	(void)t;
	val = xs_fetch(dir, node);
	if (val == NULL)
		return ENOENT;
	va_start(ap, fmt);
	ret = vsscanf(val, fmt, ap);
	va_end(ap);
	free(val);
	if (ret == 0)
		return ERANGE;
	if (scancountp != NULL)
		*scancountp = ret;
	return 0;
}
int xs_printf(struct xs_transaction t, const char *dir, const char *node, const char *fmt, ...)
{
	va_list ap;
	char buf[1024];
	char *path;
	int error;
	(void)t;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	path = xs_join(dir, node);
	error = cb_xs_write != NULL ? HARNESS(cb_xs_write(path, buf)) : 0;
	free(path);
	return error;
}
int xs_gather(struct xs_transaction t, const char *dir, ...)
{
	va_list ap;
	const char *name;
	int error = 0;
	(void)t;
	va_start(ap, dir);
	while (error == 0 && (name = va_arg(ap, char *)) != NULL) {
		const char *fmt = va_arg(ap, char *);
		void *result = va_arg(ap, void *);
		char *p = xs_fetch(dir, name);
		if (p == NULL) {
			error = ENOENT;
			break;
		}
		if (fmt != NULL) {
			if (sscanf(p, fmt, result) == 0)
				error = EINVAL;
			free(p);
		} else {
			*(char **)result = p;
		}
	}
	va_end(ap);
	return error;
}
const char *xenbus_get_node(device_t dev) { return dev->node; }
const char *xenbus_get_otherend_path(device_t dev) { return dev->otherend; }
const char *xenbus_get_type(device_t dev) { return dev->type; }
int xenbus_get_otherend_id(device_t dev) { return dev->otherend_id; }
static XenbusState read_state(const char *dir)
{
	char *value = xs_fetch(dir, "state");
	int state;
	if (value == NULL)
		return XenbusStateClosed;
	if (sscanf(value, "%d", &state) != 1)
		state = XenbusStateClosed;
	free(value);
	return (XenbusState)state;
}
XenbusState xenbus_get_state(device_t dev) { return read_state(dev->node); }
XenbusState xenbus_get_otherend_state(device_t dev) { return read_state(dev->otherend); }
int xenbus_set_state(device_t dev, XenbusState state)
{
	char *value = xs_fetch(dev->node, "state");
	int current, error;
	if (value == NULL)
		return ENOENT;
	if (sscanf(value, "%d", &current) != 1) {
		free(value);
		return EINVAL;
	}
	free(value);
	if (current == (int)state)
		return 0;
	error = xs_printf(XST_NIL, dev->node, "state", "%d", (int)state);
	return error;
}
int xenbus_grant_ring(device_t dev, unsigned long ring_mfn, grant_ref_t *refp)
{
	int error = gnttab_grant_foreign_access((domid_t)dev->otherend_id, ring_mfn, 0, refp);
	if (error)
		xenbus_dev_fatal(dev, error, "granting access to ring page");
	return error;
}
void xenbus_dev_fatal(device_t dev, int err, const char *fmt, ...)
{
	char buf[1024], path[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_line("xbd%d: fatal error %d: %s", dev->unit, err, buf);
	snprintf(path, sizeof(path), "error/%s", dev->node);
	xs_printf(XST_NIL, path, "error", "%i %s", err, buf);
	xenbus_set_state(dev, XenbusStateClosing);
}
void xenbus_dev_error(device_t dev, int err, const char *fmt, ...)
{
	char buf[1024], path[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_line("xbd%d: error %d: %s", dev->unit, err, buf);
	snprintf(path, sizeof(path), "error/%s", dev->node);
	xs_printf(XST_NIL, path, "error", "%i %s", err, buf);
}

/* ================================================================== the back end */
/* A blkif back end serving a RAM disk; the harness decides when it fetches, in which
 * order it answers, with which status, and when it pushes. */
struct be_request {
	uint64_t id;
	int operation, io_op, nr_segments, malformed;
	uint64_t sector_number;
	int nseg;
	grant_ref_t gref[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST * 512];
	uint8_t first[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST * 512];
	uint8_t last[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST * 512];
	int handle;
};
#define BE_MAX_PENDING 4096
static blkif_back_ring_t be_ring;
static int be_connected, be_domid, be_barrier = 1, be_flush = 1;
static struct be_request *be_pending[BE_MAX_PENDING];
static int be_npending;
static unsigned char *be_disk;
static uint64_t be_disk_bytes;

void xbd_h_be_configure(uint64_t sectors, int domid, int barrier, int flush)
{
	free(be_disk);
	be_disk_bytes = sectors * 512;
	be_disk = calloc(1, (size_t)be_disk_bytes);
	be_domid = domid;
	be_barrier = barrier;
	be_flush = flush;
	be_connected = 0;
	be_npending = 0;
}
unsigned char *xbd_h_be_disk(void) { return be_disk; }
void xbd_h_be_features(int barrier, int flush)
{
	be_barrier = barrier;
	be_flush = flush;
}
/* The conformance adapter's ring size restriction (both ends); the shared ring's address
 * identifies a fresh ring. */
void xbd_h_set_ring_entries(int front, int back)
{
	struct xbd_softc *sc = the_dev.softc;
	if (front > 0 && sc != NULL && sc->xbd_ring.sring != NULL)
		sc->xbd_ring.nr_ents = (unsigned)front;
	if (back > 0 && be_connected)
		be_ring.nr_ents = (unsigned)back;
}
uintptr_t xbd_h_ring_token(void)
{
	struct xbd_softc *sc = the_dev.softc;
	return sc != NULL && sc->xbd_ring.sring != NULL ? shim_front_ring_inits : 0;
}
void xbd_h_set_ring_index_start(unsigned start) { shim_ring_index_start = start; }
void xbd_h_evtchn_clear(void) { intr_pending = 0; }
/* Map the front's ring (the granted pages are contiguous here); 0 or -1. */
int xbd_h_be_connect(unsigned ring_ref, unsigned ring_pages)
{
	unsigned char *page = map_grant(ring_ref, be_domid, 1);
	if (page == NULL)
		return -1;
	blkif_sring_t *sring = (blkif_sring_t *)page;
	/* Xen's BACK_RING_ATTACH takes the index to start at, as Linux's blkback
	 * (xen_blkif_map) calls it: the responses produced so far; requests past them
	 * are the back end's to consume. */
	BACK_RING_ATTACH(&be_ring, sring, sring->rsp_prod, (size_t)ring_pages * PAGE_SIZE);
	be_connected = 1;
	return 0;
}
void xbd_h_be_disconnect(void) { be_connected = 0; be_npending = 0; }
static void be_parse(struct be_request *r, RING_IDX idx)
{
	blkif_request_t copy;
	int i;
	memcpy(&copy, RING_GET_REQUEST(&be_ring, idx), sizeof(copy));
	r->id = copy.id;
	r->operation = copy.operation;
	r->io_op = copy.operation;
	r->sector_number = copy.sector_number;
	r->nr_segments = copy.nr_segments;
	r->handle = copy.handle;
	r->nseg = 0;
	r->malformed = 0;
	if (copy.operation == BLKIF_OP_INDIRECT) {
		blkif_request_indirect_t ind;
		int pages, n;
		memcpy(&ind, RING_GET_REQUEST(&be_ring, idx), sizeof(ind));
		r->io_op = ind.indirect_op;
		r->id = ind.id;
		r->sector_number = ind.sector_number;
		r->nr_segments = ind.nr_segments;
		r->handle = ind.handle;
		n = ind.nr_segments;
		pages = (n + 511) / 512;
		if (n > BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST * 512 || pages == 0) {
			r->malformed = 1;
			return;
		}
		for (i = 0; i < n; i++) {
			struct blkif_request_segment *seg;
			unsigned char *pg = map_grant(ind.indirect_grefs[i / 512], be_domid, 0);
			if (pg == NULL) {
				r->malformed = 1;
				return;
			}
			seg = (struct blkif_request_segment *)pg + (i % 512);
			r->gref[i] = seg->gref;
			r->first[i] = seg->first_sect;
			r->last[i] = seg->last_sect;
		}
		r->nseg = n;
		return;
	}
	if (copy.nr_segments > BLKIF_MAX_SEGMENTS_PER_REQUEST) {
		r->malformed = 1;
		return;
	}
	for (i = 0; i < copy.nr_segments; i++) {
		r->gref[i] = copy.seg[i].gref;
		r->first[i] = copy.seg[i].first_sect;
		r->last[i] = copy.seg[i].last_sect;
	}
	r->nseg = copy.nr_segments;
}
/* Take every published request off the ring; how many. */
int xbd_h_be_fetch(void)
{
	int n = 0;
	if (!be_connected)
		return 0;
	for (;;) {
		int more;
		while (RING_HAS_UNCONSUMED_REQUESTS(&be_ring) && be_npending < BE_MAX_PENDING) {
			struct be_request *r = calloc(1, sizeof(*r));
			be_parse(r, be_ring.req_cons);
			be_ring.req_cons++;
			be_pending[be_npending++] = r;
			n++;
		}
		if (be_npending >= BE_MAX_PENDING)
			break;
		RING_FINAL_CHECK_FOR_REQUESTS(&be_ring, more);
		if (!more)
			break;
	}
	return n;
}
int xbd_h_be_pending(void) { return be_npending; }
/* Describe pending request i: id, operation, io_op, sector, nr_segments, handle, nseg. */
int xbd_h_be_describe(int i, uint64_t *out, grant_ref_t *grefs, int max)
{
	struct be_request *r;
	int k;
	if (i < 0 || i >= be_npending)
		return -1;
	r = be_pending[i];
	out[0] = r->id;
	out[1] = (uint64_t)r->operation;
	out[2] = (uint64_t)r->io_op;
	out[3] = r->sector_number;
	out[4] = (uint64_t)r->nr_segments;
	out[5] = (uint64_t)r->handle;
	out[6] = (uint64_t)r->nseg;
	out[7] = (uint64_t)r->malformed;
	for (k = 0; k < r->nseg && k < max; k++)
		grefs[k] = r->gref[k];
	return 0;
}
static int be_perform(struct be_request *r)
{
	uint64_t position;
	int k, reading;
	if (r->malformed)
		return BLKIF_RSP_ERROR;
	if (r->io_op == BLKIF_OP_FLUSH_DISKCACHE)
		return be_flush ? BLKIF_RSP_OKAY : BLKIF_RSP_EOPNOTSUPP;
	if (r->io_op == BLKIF_OP_WRITE_BARRIER) {
		if (!be_barrier)
			return BLKIF_RSP_EOPNOTSUPP;
	} else if (r->io_op != BLKIF_OP_READ && r->io_op != BLKIF_OP_WRITE) {
		return BLKIF_RSP_ERROR;
	}
	reading = r->io_op == BLKIF_OP_READ;
	position = r->sector_number * 512;
	for (k = 0; k < r->nseg; k++) {
		uint64_t nbytes;
		unsigned char *page;
		if (r->last[k] < r->first[k] || r->last[k] > 7)
			return BLKIF_RSP_ERROR;
		nbytes = (uint64_t)(r->last[k] - r->first[k] + 1) * 512;
		if (position + nbytes > be_disk_bytes)
			return BLKIF_RSP_ERROR;
		page = map_grant(r->gref[k], be_domid, reading);
		if (page == NULL)
			return BLKIF_RSP_ERROR;
		if (reading)
			memcpy(page + r->first[k] * 512, be_disk + position, nbytes);
		else
			memcpy(be_disk + position, page + r->first[k] * 512, nbytes);
		position += nbytes;
	}
	return BLKIF_RSP_OKAY;
}
/* Answer pending request i (status: the given one if use_status, else the I/O's own);
 * push (and notify when ring.h says so) if push.  The status sent, or -100. */
int xbd_h_be_respond(int i, int use_status, int status, int push)
{
	struct be_request *r;
	blkif_response_t *rsp;
	int performed, notify;
	if (!be_connected || i < 0 || i >= be_npending)
		return -100;
	r = be_pending[i];
	memmove(be_pending + i, be_pending + i + 1,
		sizeof(be_pending[0]) * (size_t)(be_npending - i - 1));
	be_npending--;
	performed = be_perform(r);
	if (use_status)
		performed = status;
	rsp = RING_GET_RESPONSE(&be_ring, be_ring.rsp_prod_pvt);
	rsp->id = r->id;
	rsp->operation = (uint8_t)r->operation;
	rsp->status = (int16_t)performed;
	be_ring.rsp_prod_pvt++;
	free(r);
	if (push) {
		RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&be_ring, notify);
		if (notify) {
			to_frontend++;
			intr_pending = 1;
		}
	}
	return performed;
}
/* Push written responses; 1 if the front end was notified. */
int xbd_h_be_push(void)
{
	int notify;
	if (!be_connected)
		return 0;
	RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&be_ring, notify);
	if (notify) {
		to_frontend++;
		intr_pending = 1;
	}
	return notify;
}
/* A raw response with any id (a hostile back end). */
int xbd_h_be_raw_response(uint64_t id, int operation, int status)
{
	blkif_response_t *rsp;
	if (!be_connected)
		return -1;
	rsp = RING_GET_RESPONSE(&be_ring, be_ring.rsp_prod_pvt);
	rsp->id = id;
	rsp->operation = (uint8_t)operation;
	rsp->status = (int16_t)status;
	be_ring.rsp_prod_pvt++;
	return xbd_h_be_push();
}

/* ================================================================== driver entry points */
static devop_t method(const char *name)
{
	device_method_t *m;
	for (m = shim_driver->methods; m->name != NULL; m++)
		if (strcmp(m->name, name) == 0)
			return m->func;
	return NULL;
}
static int last_result;
int xbd_h_last_result(void) { return last_result; }

void xbd_h_reset(int grant_entries)
{
	int i;
	gnttab_reset(grant_entries);
	gnt_nreserve = 0;
	gnt_defer_callbacks = 0;
	shim_ring_index_start = 0;
	for (i = 0; i < ndeferred; i++)
		free(deferred[i]);
	ndeferred = 0;
	ndma_modes = 0;
	dma_default_mode = DMA_IMMEDIATE;
	dma_loads = 0;
	fail_tag_create = 0;
	fail_map_create_after = -1;
	intr_handler = NULL;
	intr_bound = intr_pending = 0;
	next_port = 5;
	to_backend = to_frontend = delivered = 0;
	wakeups = yields = io_lock_recursions = 0;
	disk_resize_error = 0;
	malloc_fail_countdown = contig_fail_countdown = -1;
	nbios = ncompleted = 0;
	ndisks = 0;
	memset(units_used, 0, sizeof(units_used));
	stolen = GNTTAB_LIST_END;
	features_handler = NULL;
	sleeper_running = sleeper_sleeping = sleeper_done = sleeper_woken = 0;
	/* the previous softc, bios and disks are leaked on purpose: a fault may have left
	 * them in any state, and the driver may still point into them */
	memset(&the_dev, 0, sizeof(the_dev));
	memset(&world, 0, sizeof(world));
	fault_kind = FAULT_NONE;
	fault_message[0] = '\0';
}
void xbd_h_plug(const char *node, const char *otherend, int otherend_id, const char *type)
{
	snprintf(the_dev.node, sizeof(the_dev.node), "%s", node);
	snprintf(the_dev.otherend, sizeof(the_dev.otherend), "%s", otherend);
	snprintf(the_dev.type, sizeof(the_dev.type), "%s", type);
	the_dev.otherend_id = otherend_id;
	the_dev.softc = calloc(1, shim_driver->size);
}
int *xbd_h_tunable_enable_indirect(void)
{
	extern int *shim_tunable_xbd_enable_indirect;
	return shim_tunable_xbd_enable_indirect;
}
int xbd_h_probe(void) { ENTRY(last_result = ((int (*)(device_t))method("device_probe"))(&the_dev)); }
int xbd_h_attach(void) { ENTRY(last_result = ((int (*)(device_t))method("device_attach"))(&the_dev)); }
int xbd_h_detach(void) { ENTRY(last_result = ((int (*)(device_t))method("device_detach"))(&the_dev)); }
int xbd_h_suspend(void) { ENTRY(last_result = ((int (*)(device_t))method("device_suspend"))(&the_dev)); }
int xbd_h_shutdown(void) { ENTRY(last_result = ((int (*)(device_t))method("device_shutdown"))(&the_dev)); }
int xbd_h_resume(void) { ENTRY(last_result = ((int (*)(device_t))method("device_resume"))(&the_dev)); }
static void sleeper_body(void)
{
	ENTRY_BODY(last_result = ((int (*)(device_t))method("device_suspend"))(&the_dev));
	sleeper_fault = fault_kind;
	sleeper_done = 1;
	sleeper_running = 0;
	/* returning switches to uc_link: the harness */
}
/* -2: the sleeper sleeps in msleep; else its fault kind (0: returned, see last_result). */
static int sleeper_status(void)
{
	if (!sleeper_done)
		return -2;
	fault_kind = sleeper_fault;
	return sleeper_fault;
}
/* xbd_suspend on its own stack, up to its first msleep or its end. */
int xbd_h_sleeper_start(void)
{
	sigjmp_buf *outer = fault_jmp;
	if (sleeper_running)
		return -3;
	if (sleeper_stack == NULL)
		sleeper_stack = malloc(1 << 20);
	getcontext(&sleeper_ctx);
	sleeper_ctx.uc_stack.ss_sp = sleeper_stack;
	sleeper_ctx.uc_stack.ss_size = 1 << 20;
	sleeper_ctx.uc_link = &harness_ctx;
	makecontext(&sleeper_ctx, sleeper_body, 0);
	sleeper_running = 1;
	sleeper_done = 0;
	sleeper_fault = 0;
	swapcontext(&harness_ctx, &sleeper_ctx);
	fault_jmp = outer;
	return sleeper_status();
}
/* msleep returns `answer` (0: woken, EWOULDBLOCK: timed out); runs to the next msleep or the end. */
int xbd_h_sleeper_continue(int answer)
{
	sigjmp_buf *outer = fault_jmp;
	if (!sleeper_running || !sleeper_sleeping)
		return -3;
	sleeper_answer = answer;
	swapcontext(&harness_ctx, &sleeper_ctx);
	fault_jmp = outer;
	return sleeper_status();
}
int xbd_h_sleeper_state(int which)
{
	switch (which) {
	case 0: return sleeper_running && sleeper_sleeping;
	case 1: return sleeper_woken;
	}
	return -1;
}
int xbd_h_backend_changed(int state)
{
	ENTRY(((void (*)(device_t, XenbusState))method("xenbus_otherend_changed"))(
	    &the_dev, (XenbusState)state));
}
static struct disk *the_disk(void)
{
	struct xbd_softc *sc = the_dev.softc;
	return sc != NULL ? sc->xbd_disk : NULL;
}
int xbd_h_open(void)
{
	struct disk *d = the_disk();
	if (d == NULL)
		return -1;
	ENTRY(last_result = d->d_open(d));
}
int xbd_h_close(void)
{
	struct disk *d = the_disk();
	if (d == NULL)
		return -1;
	ENTRY(last_result = d->d_close(d));
}
int xbd_h_dump(void *virtual, long offset, long length)
{
	struct disk *d = the_disk();
	if (d == NULL)
		return -1;
	ENTRY(last_result = d->d_dump(d, virtual, (off_t)offset, (size_t)length));
}
/* On a stopped system the grant table runs a free callback where xbd_int returned the
 * references: with deferred callbacks, every ready one runs after each xbd_int (the
 * reference adapter's dump, the model's dump_grant_callback). */
static void dump_after_int(void)
{
	while (gnt_defer_callbacks && fire_ready_callback_body())
		;
}
/* The kernel dumper's d_dump as the conformance adapter runs it: the back end answers at
 * each HYPERVISOR_yield (the yield callback) and ready grant free callbacks run after each
 * xbd_int (dump_after_int).  The fault kind; xbd_dump's result in xbd_h_last_result. */
int xbd_h_dump_polled(void *virtual, long offset, long length)
{
	struct disk *d = the_disk();
	int kind;
	if (d == NULL)
		return -1;
	dump_polling = 1;
	dump_int_ran = 0;
	ENTRY_BODY(last_result = d->d_dump(d, virtual, (off_t)offset, (size_t)length));
	kind = fault_kind;
	dump_polling = dump_int_ran = 0;
	return kind;
}
/* A new bio with a page-aligned buffer (+ page_offset bytes); its id or -1. */
int xbd_h_bio_new(int cmd, int flags, int64_t pblkno, long bcount, int page_offset)
{
	struct bio *bp;
	size_t size;
	if (nbios >= MAX_BIOS)
		return -1;
	bp = calloc(1, sizeof(*bp));
	size = ((size_t)bcount + (size_t)page_offset + PAGE_SIZE) & ~(size_t)PAGE_MASK;
	bp->bio_data = (char *)(world.pages_alloc != NULL ? world_pages(size)
							   : aligned_alloc(PAGE_SIZE, size));
	if (bp->bio_data == NULL) {
		free(bp);
		return -1;
	}
	bp->bio_data += page_offset;
	memset(bp->bio_data, 0, (size_t)bcount);
	bp->bio_cmd = (uint16_t)cmd;
	bp->bio_flags = (uint16_t)flags;
	bp->bio_pblkno = pblkno;
	bp->bio_offset = pblkno * 512;
	bp->bio_bcount = bcount;
	bp->bio_resid = 0; /* g_clone_bio hands the driver a zeroed bio */
	bp->shim_id = nbios;
	bios[nbios++] = bp;
	return bp->shim_id;
}
char *xbd_h_bio_data(int id) { return bios[id]->bio_data; }
/* done_count, bio_error, bio_flags, bio_resid */
void xbd_h_bio_status(int id, long *out)
{
	struct bio *bp = bios[id];
	out[0] = bp->shim_done_count;
	out[1] = bp->bio_error;
	out[2] = bp->bio_flags;
	out[3] = bp->bio_resid;
}
int xbd_h_completed(int *out, int max)
{
	int i;
	for (i = 0; i < ncompleted && i < max; i++)
		out[i] = completed[i];
	return ncompleted;
}
/* xbd_strategy through the disk's d_strategy (the disk is the_dev's, or NULL: bogus). */
int xbd_h_strategy(int id)
{
	struct disk *d = the_disk();
	if (d == NULL)
		return -1;
	bios[id]->bio_disk = d;
	ENTRY(d->d_strategy(bios[id]));
}

/* ------------------------------------------------------------------ observations */
/* softc fields in a fixed order (see xbdspec/cdriver.py SOFTC_FIELDS). */
int xbd_h_softc(long *out)
{
	struct xbd_softc *sc = the_dev.softc;
	struct disk *d;
	int i;
	if (sc == NULL)
		return -1;
	d = sc->xbd_disk;
	out[0] = sc->xbd_state;
	out[1] = sc->xbd_flags;
	out[2] = sc->xbd_qfrozen_cnt;
	out[3] = sc->xbd_ring_pages;
	out[4] = sc->xbd_max_requests;
	out[5] = sc->xbd_max_request_segments;
	out[6] = sc->xbd_max_request_size;
	out[7] = sc->xbd_max_request_indirectpages;
	out[8] = sc->xbd_users;
	out[9] = sc->xbd_unit;
	for (i = 0; i < XBD_Q_COUNT; i++)
		out[10 + i] = sc->xbd_cm_q[i].q_length;
	out[15] = sc->xbd_ring.sring != NULL ? (long)sc->xbd_ring.req_prod_pvt : -1;
	out[16] = sc->xbd_ring.sring != NULL ? (long)sc->xbd_ring.rsp_cons : -1;
	out[17] = sc->xbd_ring.sring != NULL ? (long)sc->xbd_ring.sring->req_prod : -1;
	out[18] = sc->xbd_shadow != NULL;
	out[19] = d != NULL;
	out[20] = d != NULL ? (long)d->d_mediasize : 0;
	out[21] = d != NULL ? (long)d->d_sectorsize : 0;
	out[22] = d != NULL ? (long)d->d_flags : 0;
	out[23] = d != NULL ? d->shim_destroyed : 0;
	out[24] = d != NULL ? d->shim_gone : 0;
	out[25] = the_dev.unit;
	out[26] = sc->xbd_io_lock.depth;
	out[27] = d != NULL ? (long)d->d_stripesize : 0;
	out[28] = d != NULL ? (long)d->d_maxsize : 0;
	out[29] = sc->xbd_ring.sring != NULL ? (long)sc->xbd_ring.nr_ents : 0;
	return 0;
}
/* each command's cm_flags (queue in the low byte); how many commands */
int xbd_h_commands(long *out, int max)
{
	struct xbd_softc *sc = the_dev.softc;
	int i;
	if (sc == NULL || sc->xbd_shadow == NULL)
		return 0;
	for (i = 0; i < (int)sc->xbd_max_requests && i < max; i++)
		out[i] = sc->xbd_shadow[i].cm_flags;
	return (int)sc->xbd_max_requests;
}
