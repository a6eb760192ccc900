/*
 * The Linux kernel shim's implementations (see linux_shim.h), and the entry points the
 * harness calls (shim_*).  Single-threaded: the harness calls in one at a time; work the
 * kernel would defer (schedule_work, an asynchronous queue run) runs when the entry point
 * returns, after the driver has dropped its locks.
 */
#include "linux_shim.h"

static struct shim_callbacks cb;

/* ---- printk, BUG */
void shim_printk(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (cb.log)
		cb.log(buf);
}

#include <setjmp.h>
#include <signal.h>
static jmp_buf *bug_jump;
static char bug_where[256];

void shim_bug(const char *file, int line)
{
	snprintf(bug_where, sizeof(bug_where), "BUG at %s:%d", file, line);
	shim_printk("%s\n", bug_where);
	if (bug_jump)
		longjmp(*bug_jump, 1);
	abort();
}

const char *shim_bug_where(void) { return bug_where; }

/*
 * A fault inside the driver (a NULL or freed pointer dereferenced: SIGSEGV, SIGBUS)
 * unwinds to the entry point like BUG(), so that the harness reports it as the
 * driver's failure instead of the whole tool dying.  A fault outside the driver goes
 * to whatever handled the signal before (another copy of this library, or the
 * default action).  SA_NODEFER: the handler leaves by longjmp, so the signal must not
 * stay blocked.
 */
static struct sigaction previous_segv, previous_bus;

static void crash_handler(int sig, siginfo_t *info, void *context)
{
	struct sigaction *previous = sig == SIGSEGV ? &previous_segv : &previous_bus;

	if (bug_jump) {
		snprintf(bug_where, sizeof(bug_where), "%s at address %p inside the driver",
			 sig == SIGSEGV ? "SIGSEGV" : "SIGBUS", info ? info->si_addr : NULL);
		longjmp(*bug_jump, 2);
	}
	if ((previous->sa_flags & SA_SIGINFO) && previous->sa_sigaction) {
		previous->sa_sigaction(sig, info, context);
		return;
	}
	if (previous->sa_handler != SIG_DFL && previous->sa_handler != SIG_IGN &&
	    !(previous->sa_flags & SA_SIGINFO)) {
		previous->sa_handler(sig);
		return;
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * Built with AddressSanitizer, the shim leaves SIGSEGV and SIGBUS to ASan's own handler
 * (installed when its runtime starts): a fault inside the driver is then reported with
 * its stack and the process stops (halt_on_error), instead of unwinding quietly to the
 * entry point, which would hide the very faults the sanitized run is for.
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

/* 1: built with the sanitizers (faults are ASan's to report), 0: contain_crashes() */
int shim_sanitized(void) { return SHIM_SANITIZED; }

/*
 * Every copy of the library (one per driver instance) chains to the handlers that were
 * there before the first copy, not to another copy's: a copy may be unloaded
 * (shim_exit, then dlclose) while others live.  The first copy records them in the
 * environment (the one place all copies share), as the handler's address and flags.
 */
#define ORIGINAL_HANDLERS "XBDSPEC_SHIM_ORIGINAL_HANDLERS"

static void remember(const struct sigaction *segv, const struct sigaction *bus)
{
	char text[128];

	snprintf(text, sizeof(text), "%p %d %p %d", (void *)segv->sa_sigaction, segv->sa_flags,
		 (void *)bus->sa_sigaction, bus->sa_flags);
	setenv(ORIGINAL_HANDLERS, text, 1);
}

static void recall(struct sigaction *segv, struct sigaction *bus)
{
	const char *text = getenv(ORIGINAL_HANDLERS);
	void *segv_fn = NULL, *bus_fn = NULL;
	int segv_flags = 0, bus_flags = 0;

	memset(segv, 0, sizeof(*segv));
	memset(bus, 0, sizeof(*bus));
	if (text && sscanf(text, "%p %d %p %d", &segv_fn, &segv_flags, &bus_fn, &bus_flags) == 4) {
		segv->sa_sigaction = (void (*)(int, siginfo_t *, void *))segv_fn;
		segv->sa_flags = segv_flags;
		bus->sa_sigaction = (void (*)(int, siginfo_t *, void *))bus_fn;
		bus->sa_flags = bus_flags;
	}
	sigemptyset(&segv->sa_mask);
	sigemptyset(&bus->sa_mask);
}

static void contain_crashes(void)
{
	struct sigaction action, was_segv, was_bus;

	memset(&action, 0, sizeof(action));
	action.sa_sigaction = crash_handler;
	action.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&action.sa_mask);
	sigaction(SIGSEGV, &action, &was_segv);
	sigaction(SIGBUS, &action, &was_bus);
	if (!getenv(ORIGINAL_HANDLERS))
		remember(&was_segv, &was_bus);
	recall(&previous_segv, &previous_bus);
}

/*
 * Make this copy's handler the one installed (a copy about to run after another was
 * loaded: its removal before it is unloaded, or the newest copy again afterwards).
 */
void shim_contain(void)
{
	if (!SHIM_SANITIZED)
		contain_crashes();
}

/*
 * Before this copy is unloaded: if its handler is the one installed, put the original
 * back (the next driver instance installs its own at shim_init).
 */
void shim_exit(void)
{
	struct sigaction now;

	if (SHIM_SANITIZED)
		return;
	sigaction(SIGSEGV, NULL, &now);
	if (now.sa_sigaction == crash_handler)
		sigaction(SIGSEGV, &previous_segv, NULL);
	sigaction(SIGBUS, NULL, &now);
	if (now.sa_sigaction == crash_handler)
		sigaction(SIGBUS, &previous_bus, NULL);
}

/* ---- memory */
void *kmalloc(size_t size, gfp_t gfp)
{
	return (gfp & __GFP_ZERO) ? calloc(1, size ? size : 1) : malloc(size ? size : 1);
}
void *kzalloc(size_t size, gfp_t gfp) { (void)gfp; return calloc(1, size ? size : 1); }
void *kcalloc(size_t n, size_t size, gfp_t gfp) { (void)gfp; return calloc(n ? n : 1, size ? size : 1); }
void *kvcalloc(size_t n, size_t size, gfp_t gfp) { return kcalloc(n, size, gfp); }
void kfree(const void *p) { free((void *)p); }
void kvfree(const void *p) { free((void *)p); }
unsigned int memalloc_noio_save(void) { return 0; }
void memalloc_noio_restore(unsigned int flags) { (void)flags; }

/*
 * The guest's memory: MAX_PFNS - 1 page frames (256 MiB), pfn 0 unused.  A freed page's
 * frame goes back on a free list and is handed out again, as the kernel's page allocator
 * would: what bounds the driver is the pages it holds at once, not how many it has
 * allocated since it was loaded.
 */
#define MAX_PFNS 65536
static struct page *pfns[MAX_PFNS];
static unsigned long next_pfn = 1;
static unsigned long pages_live;
static unsigned long free_pfns[MAX_PFNS];
static unsigned long nr_free_pfns;

static struct page *page_of(void *virt)
{
	struct page *page;
	unsigned long pfn;

	if (nr_free_pfns)
		pfn = free_pfns[--nr_free_pfns];
	else if (next_pfn < MAX_PFNS)
		pfn = next_pfn++;
	else
		return NULL;
	page = calloc(1, sizeof(*page));
	page->virt = virt;
	page->pfn = pfn;
	pfns[pfn] = page;
	pages_live++;
	return page;
}

/* The frame of a page that is being freed: free for page_of again. */
static void release_pfn(unsigned long pfn)
{
	pfns[pfn] = NULL;
	free_pfns[nr_free_pfns++] = pfn;
	pages_live--;
}

struct page *alloc_page(gfp_t gfp)
{
	void *virt;
	struct page *page;

	(void)gfp;
	virt = cb.pages_alloc(1);
	if (!virt)
		return NULL;
	page = page_of(virt);
	if (!page) /* out of frames: the memory goes back */
		cb.pages_free(virt);
	return page;
}

void __free_page(struct page *page)
{
	if (!page)
		return;
	release_pfn(page->pfn);
	cb.pages_free(page->virt);
	free(page);
}

void *page_address(const struct page *page) { return page->virt; }
unsigned long xen_page_to_gfn(struct page *page) { return page->pfn; }

unsigned long virt_to_gfn(void *v)
{
	unsigned long i;

	for (i = 1; i < next_pfn; i++)
		if (pfns[i] && pfns[i]->virt == v)
			return i;
	BUG();
}

unsigned long shim_pages_live(void) { return pages_live; }

/* ---- bitmaps */
unsigned long find_next_bit(const unsigned long *addr, unsigned long size, unsigned long off)
{
	for (; off < size; off++)
		if (addr[off / BITS_PER_LONG] & (1UL << (off % BITS_PER_LONG)))
			return off;
	return size;
}
void bitmap_set(unsigned long *map, unsigned int start, unsigned int nr)
{
	for (; nr; nr--, start++)
		map[start / BITS_PER_LONG] |= 1UL << (start % BITS_PER_LONG);
}
void bitmap_clear(unsigned long *map, unsigned int start, unsigned int nr)
{
	for (; nr; nr--, start++)
		map[start / BITS_PER_LONG] &= ~(1UL << (start % BITS_PER_LONG));
}
unsigned long simple_strtoul(const char *cp, char **endp, unsigned int base)
{
	return strtoul(cp, endp, (int)base);
}

/* ---- workqueues: run when the entry point returns */
#define MAX_WORK 64
static struct work_struct *work_queue[MAX_WORK];
static int nr_work;
static int delayed_scheduled;

bool schedule_work(struct work_struct *work)
{
	if (work->pending || nr_work == MAX_WORK)
		return false;
	work->pending = 1;
	work_queue[nr_work++] = work;
	return true;
}
bool schedule_delayed_work(struct delayed_work *dwork, unsigned long delay)
{
	(void)dwork;
	(void)delay;
	delayed_scheduled++; /* the persistent-grant purge every 10 s: not run */
	return true;
}
static void run_one(struct work_struct *work)
{
	int i;

	for (i = 0; i < nr_work; i++)
		if (work_queue[i] == work) {
			memmove(&work_queue[i], &work_queue[i + 1], (nr_work - i - 1) * sizeof(work));
			nr_work--;
			break;
		}
	work->pending = 0;
	work->func(work);
}
bool flush_work(struct work_struct *work)
{
	if (!work->pending)
		return false;
	run_one(work);
	return true;
}
bool cancel_delayed_work_sync(struct delayed_work *dwork) { (void)dwork; return false; }
unsigned int num_online_cpus(void) { return 4; }

/* ---- scatterlists */
void sg_init_table(struct scatterlist *sg, unsigned int nents)
{
	memset(sg, 0, sizeof(*sg) * nents);
	if (nents)
		sg[nents - 1].end = true;
}

/* ---- grant tables: the shim picks references; grants go to the harness */
#define FIRST_REF 8
/*
 * The guest's grant table: gnttab_max_frames frames of 512 v1 entries.  Xen 4.17's
 * default is 64 frames (32,768 references); a host may set fewer (gnttab_max_frames=).
 * The harness sets shim_grant_refs before shim_init (the "grant_refs" parameter).
 */
#define MAX_REFS 65536
unsigned int shim_grant_refs = 32768;
void *shim_grant_refs_addr(void) { return &shim_grant_refs; }
#define NR_REFS (shim_grant_refs < MAX_REFS ? shim_grant_refs : MAX_REFS)
static grant_ref_t ref_next[FIRST_REF + MAX_REFS];
static grant_ref_t free_head = INVALID_GRANT_REF;
static unsigned int free_count;
static int ref_granted[FIRST_REF + MAX_REFS];
static struct gnttab_free_callback *free_callbacks;

static void refs_init(void)
{
	int r;

	free_head = INVALID_GRANT_REF;
	free_count = 0;
	for (r = FIRST_REF + NR_REFS - 1; r >= FIRST_REF; r--) {
		ref_next[r] = free_head;
		free_head = r;
		free_count++;
		ref_granted[r] = 0;
	}
	free_callbacks = NULL;
}

static void check_free_callbacks(void)
{
	struct gnttab_free_callback *c = free_callbacks, **prev = &free_callbacks;

	while (c) {
		struct gnttab_free_callback *next = c->next;

		if (c->count <= free_count) {
			*prev = next;
			c->queued = 0;
			c->fn(c->arg);
		} else {
			prev = &c->next;
		}
		c = next;
	}
}

static void put_free_ref(grant_ref_t ref)
{
	ref_next[ref] = free_head;
	free_head = ref;
	free_count++;
	check_free_callbacks();
}

int gnttab_alloc_grant_references(u16 count, grant_ref_t *head)
{
	grant_ref_t h = INVALID_GRANT_REF;
	unsigned int i;

	if (count > free_count)
		return -ENOSPC;
	for (i = 0; i < count; i++) {
		grant_ref_t r = free_head;

		free_head = ref_next[r];
		free_count--;
		ref_next[r] = h;
		h = r;
	}
	*head = h;
	return 0;
}
void gnttab_free_grant_references(grant_ref_t head)
{
	while (head != INVALID_GRANT_REF) {
		grant_ref_t next = ref_next[head];

		ref_next[head] = free_head;
		free_head = head;
		free_count++;
		head = next;
	}
	check_free_callbacks();
}
int gnttab_claim_grant_reference(grant_ref_t *head)
{
	grant_ref_t r = *head;

	if (r == INVALID_GRANT_REF)
		return -ENOSPC;
	*head = ref_next[r];
	return (int)r;
}
void gnttab_release_grant_reference(grant_ref_t *head, grant_ref_t release)
{
	ref_next[release] = *head;
	*head = release;
}
void gnttab_grant_foreign_access_ref(grant_ref_t ref, domid_t domid, unsigned long frame,
				     int readonly)
{
	struct page *page = frame < MAX_PFNS ? pfns[frame] : NULL;

	(void)domid;
	BUG_ON(ref < FIRST_REF || ref >= FIRST_REF + NR_REFS);
	BUG_ON(page == NULL);
	ref_granted[ref] = 1;
	cb.grant(ref, page->virt, readonly);
}
int gnttab_grant_foreign_access(domid_t domid, unsigned long frame, int readonly)
{
	grant_ref_t head;
	int ref;

	if (gnttab_alloc_grant_references(1, &head))
		return -ENOSPC;
	ref = gnttab_claim_grant_reference(&head);
	gnttab_grant_foreign_access_ref(ref, domid, frame, readonly);
	return ref;
}
bool gnttab_try_end_foreign_access(grant_ref_t ref)
{
	if (ref < FIRST_REF || ref >= FIRST_REF + NR_REFS || !ref_granted[ref])
		return false;
	if (!cb.end_grant(ref))
		return false;
	ref_granted[ref] = 0;
	put_free_ref(ref);
	return true;
}
void gnttab_end_foreign_access(grant_ref_t ref, struct page *page)
{
	if (!gnttab_try_end_foreign_access(ref))
		shim_printk("gnttab_end_foreign_access: grant %u still in use\n", ref);
	if (page)
		__free_page(page);
}
void gnttab_request_free_callback(struct gnttab_free_callback *callback, void (*fn)(void *),
				  void *arg, u16 count)
{
	if (callback->queued)
		return;
	callback->fn = fn;
	callback->arg = arg;
	callback->count = count;
	callback->queued = 1;
	callback->next = free_callbacks;
	free_callbacks = callback;
	check_free_callbacks();
}
void gnttab_cancel_free_callback(struct gnttab_free_callback *callback)
{
	struct gnttab_free_callback **p;

	for (p = &free_callbacks; *p; p = &(*p)->next)
		if (*p == callback) {
			*p = callback->next;
			break;
		}
	callback->queued = 0;
}
void gnttab_foreach_grant_in_range(struct page *page, unsigned int offset, unsigned int len,
				   xen_grant_fn_t fn, void *data)
{
	unsigned int goffset = offset & (XEN_PAGE_SIZE - 1), glen;
	unsigned long xen_pfn = xen_page_to_gfn(page) + (offset >> XEN_PAGE_SHIFT);

	while (len) {
		glen = min_t(unsigned int, XEN_PAGE_SIZE - goffset, len);
		fn(xen_pfn, goffset, glen, data);
		goffset = 0;
		xen_pfn++;
		len -= glen;
	}
}
unsigned int shim_grants_held(void)
{
	unsigned int r, n = 0;

	for (r = FIRST_REF; r < FIRST_REF + NR_REFS; r++)
		n += ref_granted[r];
	return n;
}

/* ---- event channels */
#define MAX_IRQS 16
#define FIRST_PORT 17
static struct {
	unsigned int evtchn;
	irq_handler_t handler;
	void *dev_id;
} irqs[MAX_IRQS];
static unsigned int next_port = FIRST_PORT;
unsigned int shim_eois;

int xenbus_alloc_evtchn(struct xenbus_device *dev, unsigned int *port)
{
	(void)dev;
	*port = next_port++;
	return 0;
}
int xenbus_free_evtchn(struct xenbus_device *dev, unsigned int port)
{
	(void)dev;
	(void)port;
	return 0;
}
int bind_evtchn_to_irqhandler_lateeoi(unsigned int evtchn, irq_handler_t handler,
				      unsigned long irqflags, const char *devname, void *dev_id)
{
	int irq;

	(void)irqflags;
	(void)devname;
	for (irq = 1; irq < MAX_IRQS; irq++)
		if (!irqs[irq].handler) {
			irqs[irq].evtchn = evtchn;
			irqs[irq].handler = handler;
			irqs[irq].dev_id = dev_id;
			return irq;
		}
	return -ENOSPC;
}
void unbind_from_irqhandler(unsigned int irq, void *dev_id)
{
	(void)dev_id;
	if (irq < MAX_IRQS)
		memset(&irqs[irq], 0, sizeof(irqs[irq]));
}
void notify_remote_via_irq(int irq)
{
	if (irq > 0 && irq < MAX_IRQS && irqs[irq].handler)
		cb.notify(irqs[irq].evtchn);
}
void xen_irq_lateeoi(unsigned int irq, unsigned int eoi_flags)
{
	(void)irq;
	(void)eoi_flags;
	shim_eois++;
}

/* ---- xenbus */
static struct xenbus_driver *driver;
static struct xenbus_device xdev;
static char xdev_nodename[256], xdev_otherend[256];

static void node_path(char *out, size_t n, const char *dir, const char *node)
{
	if (node && node[0])
		snprintf(out, n, "%s/%s", dir, node);
	else
		snprintf(out, n, "%s", dir);
}

int xenbus_register_frontend(struct xenbus_driver *drv)
{
	driver = drv;
	return 0;
}
void xenbus_unregister_driver(struct xenbus_driver *drv)
{
	(void)drv;
	driver = NULL;
}
void *xenbus_read(struct xenbus_transaction t, const char *dir, const char *node,
		  unsigned int *len)
{
	char path[512], buf[4096];
	char *value;
	int n;

	node_path(path, sizeof(path), dir, node);
	n = cb.xs_read(t.id, path, buf, sizeof(buf) - 1);
	if (n < 0)
		return ERR_PTR(n);
	buf[n] = 0;
	value = malloc(n + 1);
	memcpy(value, buf, n + 1);
	if (len)
		*len = n;
	return value;
}
int xenbus_scanf(struct xenbus_transaction t, const char *dir, const char *node,
		 const char *fmt, ...)
{
	va_list ap;
	int ret;
	char *val = xenbus_read(t, dir, node, NULL);

	if (IS_ERR(val))
		return PTR_ERR(val);
	va_start(ap, fmt);
	ret = vsscanf(val, fmt, ap);
	va_end(ap);
	free(val);
	return ret == 0 ? -ERANGE : ret;
}
unsigned int xenbus_read_unsigned(const char *dir, const char *node, unsigned int default_val)
{
	unsigned int val;

	return xenbus_scanf(XBT_NIL, dir, node, "%u", &val) == 1 ? val : default_val;
}
int xenbus_printf(struct xenbus_transaction t, const char *dir, const char *node,
		  const char *fmt, ...)
{
	char path[512], value[4096];
	va_list ap;

	node_path(path, sizeof(path), dir, node);
	va_start(ap, fmt);
	vsnprintf(value, sizeof(value), fmt, ap);
	va_end(ap);
	return cb.xs_write(t.id, path, value);
}
int xenbus_gather(struct xenbus_transaction t, const char *dir, ...)
{
	va_list ap;
	const char *name;
	int ret = 0;

	va_start(ap, dir);
	while (ret == 0 && (name = va_arg(ap, char *)) != NULL) {
		const char *fmt = va_arg(ap, char *);
		void *result = va_arg(ap, void *);
		char *p = xenbus_read(t, dir, name, NULL);

		if (IS_ERR(p)) {
			ret = PTR_ERR(p);
			break;
		}
		if (fmt) {
			if (sscanf(p, fmt, result) == 0)
				ret = -EINVAL;
			free(p);
		} else {
			*(char **)result = p;
		}
	}
	va_end(ap);
	return ret;
}
int xenbus_transaction_start(struct xenbus_transaction *t)
{
	int tid = cb.xs_transaction_start();

	if (tid < 0)
		return tid;
	t->id = tid;
	return 0;
}
int xenbus_transaction_end(struct xenbus_transaction t, int abort)
{
	return cb.xs_transaction_end(t.id, abort);
}
/* drivers/xen/xenbus/xenbus_client.c's __xenbus_switch_state */
int xenbus_switch_state(struct xenbus_device *dev, enum xenbus_state state)
{
	struct xenbus_transaction xbt;
	int current_state, err, abort;

	if (state == dev->state)
		return 0;
again:
	abort = 1;
	err = xenbus_transaction_start(&xbt);
	if (err)
		return 0;
	err = xenbus_scanf(xbt, dev->nodename, "state", "%d", &current_state);
	if (err != 1)
		goto abort;
	err = xenbus_printf(xbt, dev->nodename, "state", "%d", state);
	if (err)
		goto abort;
	abort = 0;
abort:
	err = xenbus_transaction_end(xbt, abort);
	if (err == -EAGAIN && !abort)
		goto again;
	dev->state = state;
	return 0;
}
int xenbus_frontend_closed(struct xenbus_device *dev)
{
	xenbus_switch_state(dev, XenbusStateClosed);
	return 0;
}
static void dev_error(struct xenbus_device *dev, int err, const char *fmt, va_list ap)
{
	char buf[512];

	(void)dev;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	shim_printk("xenbus error %d: %s\n", err, buf);
}
void xenbus_dev_fatal(struct xenbus_device *dev, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	dev_error(dev, err, fmt, ap);
	va_end(ap);
	xenbus_switch_state(dev, XenbusStateClosing);
}
void xenbus_dev_error(struct xenbus_device *dev, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	dev_error(dev, err, fmt, ap);
	va_end(ap);
}
int xenbus_setup_ring(struct xenbus_device *dev, gfp_t gfp, void **vaddr, unsigned int nr_pages,
		      grant_ref_t *grefs)
{
	char *addr;
	unsigned int i;

	(void)gfp;
	for (i = 0; i < nr_pages; i++)
		grefs[i] = INVALID_GRANT_REF;
	*vaddr = NULL;
	/* alloc_pages_exact: the frames too (no ring is half made of memory) */
	if (nr_free_pfns + (MAX_PFNS - next_pfn) < nr_pages)
		return -ENOMEM;
	addr = cb.pages_alloc(nr_pages);
	if (!addr)
		return -ENOMEM;
	*vaddr = addr;
	for (i = 0; i < nr_pages; i++) {
		struct page *page = page_of(addr + i * XEN_PAGE_SIZE);
		int ref = gnttab_grant_foreign_access(dev->otherend_id, page->pfn, 0);

		if (ref < 0) {
			/* as xenbus_setup_ring's err: path, nothing of the ring is left */
			release_pfn(page->pfn);
			free(page);
			xenbus_teardown_ring(vaddr, i, grefs); /* frees the block, *vaddr = NULL */
			return ref;
		}
		grefs[i] = ref;
	}
	return 0;
}
void xenbus_teardown_ring(void **vaddr, unsigned int nr_pages, grant_ref_t *grefs)
{
	unsigned int i;

	for (i = 0; i < nr_pages; i++) {
		if (grefs[i] != INVALID_GRANT_REF) {
			gnttab_end_foreign_access(grefs[i], NULL);
			grefs[i] = INVALID_GRANT_REF;
		}
	}
	if (*vaddr) {
		for (i = 0; i < nr_pages; i++) {
			unsigned long pfn = virt_to_gfn((char *)*vaddr + i * XEN_PAGE_SIZE);

			free(pfns[pfn]);
			release_pfn(pfn);
		}
		cb.pages_free(*vaddr);
	}
	*vaddr = NULL;
}

/* ---- the block layer: a synchronous blk-mq */
static struct gendisk *disk;
static struct request *dispatch_head, *dispatch_tail, *requeue_head;
static int run_pending;
static unsigned long requests_live;

int register_blkdev(unsigned int major, const char *name) { (void)major; (void)name; return 0; }
void unregister_blkdev(unsigned int major, const char *name) { (void)major; (void)name; }
int blkdev_compat_ptr_ioctl(struct block_device *b, fmode_t m, unsigned c, unsigned long a)
{
	(void)b; (void)m; (void)c; (void)a;
	return -EINVAL;
}
/* block/blk-mq.c's limits (BLK_MQ_TAG_MIN, BLK_MQ_MAX_DEPTH) */
#define SHIM_BLK_MQ_TAG_MIN 1
#define SHIM_BLK_MQ_MAX_DEPTH 10240

/*
 * blk_mq_alloc_tag_set refuses a set it cannot serve, as block/blk-mq.c (6.1) does: no
 * hardware queue, no or too small a depth (the driver reserves no tags), no queue_rq;
 * the depth is capped at BLK_MQ_MAX_DEPTH.  (xlvbd_alloc_gendisk after blkif_free, with
 * nr_rings == 0, is refused here: -EINVAL.)
 */
int blk_mq_alloc_tag_set(struct blk_mq_tag_set *set)
{
	unsigned int i;

	if (!set->nr_hw_queues)
		return -EINVAL;
	if (!set->queue_depth || set->queue_depth < SHIM_BLK_MQ_TAG_MIN)
		return -EINVAL;
	if (!set->ops || !set->ops->queue_rq)
		return -EINVAL;
	if (set->queue_depth > SHIM_BLK_MQ_MAX_DEPTH) {
		shim_printk("blk-mq: reduced tag depth to %u\n", SHIM_BLK_MQ_MAX_DEPTH);
		set->queue_depth = SHIM_BLK_MQ_MAX_DEPTH;
	}
	if (set->nr_hw_queues > num_online_cpus()) /* one map: no more queues than CPUs */
		set->nr_hw_queues = num_online_cpus();
	set->hctxs = calloc(set->nr_hw_queues, sizeof(*set->hctxs));
	if (!set->hctxs)
		return -ENOMEM;
	for (i = 0; i < set->nr_hw_queues; i++)
		set->hctxs[i].queue_num = i;
	return 0;
}
void blk_mq_free_tag_set(struct blk_mq_tag_set *set)
{
	free(set->hctxs);
	set->hctxs = NULL;
}
/* __blk_mq_update_nr_hw_queues (6.1): at most one queue a CPU; no queue, or as many as
 * there are, changes nothing (the hardware contexts, and which are stopped, stay). */
void blk_mq_update_nr_hw_queues(struct blk_mq_tag_set *set, int nr)
{
	int i;
	struct request_queue *q = set->hctxs ? set->hctxs[0].queue : NULL;

	if (nr > (int)num_online_cpus())
		nr = (int)num_online_cpus();
	if (nr < 1 || (unsigned int)nr == set->nr_hw_queues)
		return;
	free(set->hctxs);
	set->nr_hw_queues = nr;
	set->hctxs = calloc(nr, sizeof(*set->hctxs));
	for (i = 0; i < nr; i++) {
		set->hctxs[i].queue_num = i;
		set->hctxs[i].queue = q;
	}
}
struct gendisk *shim_blk_mq_alloc_disk(struct blk_mq_tag_set *set, void *queuedata)
{
	struct gendisk *gd = calloc(1, sizeof(*gd));
	struct request_queue *q = calloc(1, sizeof(*q));
	unsigned int i;

	q->queuedata = queuedata;
	q->tag_set = set;
	for (i = 0; i < set->nr_hw_queues; i++)
		set->hctxs[i].queue = q;
	gd->queue = q;
	return gd;
}
void put_disk(struct gendisk *gd)
{
	if (!gd)
		return;
	if (gd == disk)
		disk = NULL;
	free(gd->queue);
	free(gd);
}
void del_gendisk(struct gendisk *gd) { gd->added = 0; }
int device_add_disk(void *parent, struct gendisk *gd, void *groups)
{
	(void)parent;
	(void)groups;
	gd->added = 1;
	disk = gd;
	run_pending = 1;
	return 0;
}
void blk_mark_disk_dead(struct gendisk *gd) { gd->dead = 1; }
void set_capacity(struct gendisk *gd, sector_t size) { gd->capacity = size; }
bool set_capacity_and_notify(struct gendisk *gd, sector_t size) { gd->capacity = size; return true; }
sector_t get_capacity(struct gendisk *gd) { return gd->capacity; }
void set_disk_ro(struct gendisk *gd, bool ro) { gd->ro = ro; }
void blk_queue_flag_set(unsigned int flag, struct request_queue *q) { q->queue_flags |= 1UL << flag; }
void blk_queue_max_discard_sectors(struct request_queue *q, unsigned int n) { q->limits.max_discard_sectors = n; }
void blk_queue_max_secure_erase_sectors(struct request_queue *q, unsigned int n) { q->limits.max_secure_erase_sectors = n; }
void blk_queue_logical_block_size(struct request_queue *q, unsigned int n) { q->limits.logical_block_size = n; }
void blk_queue_physical_block_size(struct request_queue *q, unsigned int n) { q->limits.physical_block_size = n; }
void blk_queue_max_hw_sectors(struct request_queue *q, unsigned int n) { q->limits.max_hw_sectors = n; }
void blk_queue_segment_boundary(struct request_queue *q, unsigned long m) { q->limits.seg_boundary_mask = m; }
void blk_queue_max_segment_size(struct request_queue *q, unsigned int n) { q->limits.max_segment_size = n; }
void blk_queue_max_segments(struct request_queue *q, unsigned short n) { q->limits.max_segments = n; }
void blk_queue_dma_alignment(struct request_queue *q, int m) { q->limits.dma_alignment = m; }
void blk_queue_write_cache(struct request_queue *q, bool wc, bool fua) { q->write_cache = wc; q->fua = fua; }

void bio_list_add(struct bio_list *bl, struct bio *bio)
{
	bio->bi_next = NULL;
	if (bl->tail)
		bl->tail->bi_next = bio;
	else
		bl->head = bio;
	bl->tail = bio;
}
struct bio *bio_list_pop(struct bio_list *bl)
{
	struct bio *bio = bl->head;

	if (bio) {
		bl->head = bio->bi_next;
		if (!bl->head)
			bl->tail = NULL;
		bio->bi_next = NULL;
	}
	return bio;
}
void bio_list_merge(struct bio_list *bl, struct bio_list *bl2)
{
	if (!bl2->head)
		return;
	if (bl->tail)
		bl->tail->bi_next = bl2->head;
	else
		bl->head = bl2->head;
	bl->tail = bl2->tail;
}

static void free_bio(struct bio *bio)
{
	free(bio->bi_io_vec);
	free(bio);
}

static void free_request(struct request *rq)
{
	struct bio *bio = rq->bio, *next;

	for (; bio; bio = next) {
		next = bio->bi_next;
		free_bio(bio);
	}
	free(rq);
	requests_live--;
}

static unsigned long next_seq;

static struct request *new_request(unsigned int op, sector_t sector)
{
	unsigned int cmd = disk && disk->queue->tag_set ? disk->queue->tag_set->cmd_size : 64;
	struct request *rq = calloc(1, sizeof(*rq) + (cmd < 64 ? 64 : cmd));

	rq->cmd_flags = op;
	rq->__sector = sector;
	rq->tag = -1;
	rq->shim_seq = next_seq++;
	INIT_LIST_HEAD(&rq->queuelist);
	requests_live++;
	return rq;
}

static void add_bio(struct request *rq, struct bio *bio)
{
	unsigned int i;

	bio->bi_next = NULL;
	if (rq->biotail)
		rq->biotail->bi_next = bio;
	else
		rq->bio = bio;
	rq->biotail = bio;
	for (i = 0; i < bio->bi_vcnt; i++)
		rq->__data_len += bio->bi_io_vec[i].bv_len;
	rq->nr_phys_segments += bio->bi_vcnt;
}

static void dispatch_add(struct request *rq, int at_head)
{
	rq->shim_next = NULL;
	if (at_head) {
		rq->shim_next = dispatch_head;
		dispatch_head = rq;
		if (!dispatch_tail)
			dispatch_tail = rq;
	} else {
		if (dispatch_tail)
			dispatch_tail->shim_next = rq;
		else
			dispatch_head = rq;
		dispatch_tail = rq;
	}
	run_pending = 1;
}

static void complete_cookie(unsigned long cookie, blk_status_t error)
{
	if (cookie && cb.complete)
		cb.complete(cookie, error);
}

void blk_mq_start_request(struct request *rq) { rq->started = 1; }
void blk_mq_end_request(struct request *rq, blk_status_t error)
{
	struct bio *bio;

	if (rq->bio) {
		for (bio = rq->bio; bio; bio = bio->bi_next)
			complete_cookie(bio->shim_cookie, error);
	} else {
		complete_cookie(rq->shim_cookie, error);
	}
	free_request(rq);
}
bool blk_mq_complete_request_remote(struct request *rq) { (void)rq; return false; }
void blk_mq_complete_request(struct request *rq)
{
	rq->q->tag_set->ops->complete(rq);
}
void blk_mq_requeue_request(struct request *rq, bool kick)
{
	rq->started = 0;
	rq->shim_next = requeue_head;
	requeue_head = rq;
	if (kick)
		blk_mq_kick_requeue_list(rq->q);
}
void blk_mq_kick_requeue_list(struct request_queue *q)
{
	(void)q;
	while (requeue_head) {
		struct request *rq = requeue_head;

		requeue_head = rq->shim_next;
		dispatch_add(rq, 1);
	}
}
void blk_mq_stop_hw_queue(struct blk_mq_hw_ctx *hctx) { hctx->stopped = 1; }
void blk_mq_stop_hw_queues(struct request_queue *q)
{
	unsigned int i;

	for (i = 0; i < q->tag_set->nr_hw_queues; i++)
		q->tag_set->hctxs[i].stopped = 1;
}
void blk_mq_start_stopped_hw_queues(struct request_queue *q, bool async)
{
	unsigned int i;

	(void)async; /* the run is deferred to the entry point's return, as kblockd's would be */
	for (i = 0; i < q->tag_set->nr_hw_queues; i++)
		q->tag_set->hctxs[i].stopped = 0;
	run_pending = 1;
}
void blk_mq_freeze_queue(struct request_queue *q) { (void)q; }
void blk_mq_unfreeze_queue(struct request_queue *q) { (void)q; }
void blk_mq_quiesce_queue(struct request_queue *q) { (void)q; }
void blk_mq_unquiesce_queue(struct request_queue *q) { (void)q; }
int blk_rq_map_sg(struct request_queue *q, struct request *rq, struct scatterlist *sglist)
{
	struct bio *bio;
	unsigned int i;
	int n = 0;

	(void)q;
	for (bio = rq->bio; bio; bio = bio->bi_next)
		for (i = 0; i < bio->bi_vcnt; i++, n++) {
			sglist[n].page = bio->bi_io_vec[i].bv_page;
			sglist[n].offset = bio->bi_io_vec[i].bv_offset;
			sglist[n].length = bio->bi_io_vec[i].bv_len;
			sglist[n].end = false;
		}
	if (n)
		sglist[n - 1].end = true;
	return n;
}
void submit_bio(struct bio *bio)
{
	struct request *rq = new_request(bio->shim_op, bio->shim_sector);

	rq->q = disk ? disk->queue : NULL;
	add_bio(rq, bio);
	dispatch_add(rq, 0);
}

/* Run the hardware queues: blk-mq's dispatch of what is waiting, in order.  Each request
 * belongs to hardware queue (its number mod nr_hw_queues), as blk-mq's CPU mapping would
 * spread submitters over the queues; a stopped queue's requests wait, in order, while the
 * other queues' go on. */
static void run_queue(void)
{
	struct request_queue *q;
	struct blk_mq_hw_ctx *hctx;
	struct request *prev = NULL, *rq;

	run_pending = 0;
	if (!disk || !disk->added || !disk->queue->tag_set)
		return;
	q = disk->queue;
	rq = dispatch_head;
	while (rq) {
		struct request *next = rq->shim_next;
		struct blk_mq_queue_data qd = { .rq = rq, .last = true };
		unsigned int nr = q->tag_set->nr_hw_queues ? q->tag_set->nr_hw_queues : 1;
		blk_status_t st;

		hctx = &q->tag_set->hctxs[rq->shim_seq % nr];
		if (hctx->stopped) {
			prev = rq;
			rq = next;
			continue;
		}
		/* unlink rq */
		if (prev)
			prev->shim_next = next;
		else
			dispatch_head = next;
		if (dispatch_tail == rq)
			dispatch_tail = prev;
		rq->shim_next = NULL;
		if (req_op(rq) == REQ_OP_FLUSH && !q->write_cache) {
			/* blk-flush: no write cache, nothing to flush */
			blk_mq_end_request(rq, BLK_STS_OK);
			rq = next;
			continue;
		}
		rq->q = q;
		rq->hctx = hctx;
		st = q->tag_set->ops->queue_rq(hctx, &qd);
		if (st == BLK_STS_OK) {
			rq = next;
			continue;
		}
		if (st == BLK_STS_RESOURCE || st == BLK_STS_DEV_RESOURCE) {
			/* back in its place */
			rq->started = 0;
			rq->shim_next = next;
			if (prev)
				prev->shim_next = rq;
			else
				dispatch_head = rq;
			if (!next)
				dispatch_tail = rq;
			run_pending = 0;
			if (!hctx->stopped)
				return; /* kblockd would rerun it later; the next entry does */
			prev = rq;
			rq = next;
			continue;
		}
		blk_mq_end_request(rq, st);
		rq = next;
	}
}

/* ---- the harness's entry points */
void shim_set_callbacks(const struct shim_callbacks *c) { cb = *c; }

extern int shim_module_init(void);
extern void shim_module_exit(void);

static void after_entry(void)
{
	int rounds;

	for (rounds = 0; rounds < 64 && (nr_work || run_pending); rounds++) {
		while (nr_work)
			run_one(work_queue[0]);
		if (run_pending)
			run_queue();
	}
}

#define ENTRY(...)                                   \
	do {                                         \
		jmp_buf here;                        \
		if (setjmp(here)) {                  \
			bug_jump = NULL;             \
			return -1000;                \
		}                                    \
		bug_jump = &here;                    \
		__VA_ARGS__;                         \
		after_entry();                       \
		bug_jump = NULL;                     \
	} while (0)

int shim_init(void)
{
	int ret = 0;

	if (!SHIM_SANITIZED)
		contain_crashes();
	refs_init();
	next_seq = 0;
	memset(irqs, 0, sizeof(irqs));
	next_port = FIRST_PORT;
	disk = NULL;
	dispatch_head = dispatch_tail = requeue_head = NULL;
	ENTRY(ret = shim_module_init());
	return ret;
}

int shim_probe(const char *nodename, const char *otherend, int otherend_id)
{
	int ret = -ENODEV;

	snprintf(xdev_nodename, sizeof(xdev_nodename), "%s", nodename);
	snprintf(xdev_otherend, sizeof(xdev_otherend), "%s", otherend);
	memset(&xdev, 0, sizeof(xdev));
	xdev.devicetype = "vbd";
	xdev.nodename = xdev_nodename;
	xdev.otherend = xdev_otherend;
	xdev.otherend_id = otherend_id;
	xdev.state = XenbusStateInitialising;
	if (!driver)
		return -ENODEV;
	ENTRY(ret = driver->probe(&xdev, &driver->ids[0]));
	return ret;
}

/* xenbus_otherend_changed: the driver hears the other end's state as it reads it now */
int shim_otherend_changed(void)
{
	int state;

	ENTRY({
		state = xenbus_read_unsigned(xdev.otherend, "state", XenbusStateUnknown);
		driver->otherend_changed(&xdev, state);
	});
	return 0;
}

/* the event channel fires: every bound handler, as the irq */
int shim_interrupt(void)
{
	ENTRY({
		int irq;

		for (irq = 1; irq < MAX_IRQS; irq++)
			if (irqs[irq].handler)
				irqs[irq].handler(irq, irqs[irq].dev_id);
	});
	return 0;
}

/* the block layer submits a bio: op (REQ_OP_* | flags), data in nr_pages pages */
int shim_submit(unsigned long cookie, unsigned int op, unsigned long long sector,
		unsigned int bytes, struct page **pages, unsigned int nr_pages)
{
	ENTRY({
		struct request *rq = new_request(op, sector);
		unsigned int i, left = bytes;

		rq->q = disk ? disk->queue : NULL;
		if (nr_pages) {
			struct bio *bio = calloc(1, sizeof(*bio));

			bio->shim_cookie = cookie;
			bio->shim_op = op;
			bio->shim_sector = sector;
			bio->bi_vcnt = nr_pages;
			bio->bi_io_vec = calloc(nr_pages, sizeof(struct bio_vec));
			for (i = 0; i < nr_pages; i++) {
				unsigned int len = left > PAGE_SIZE ? PAGE_SIZE : left;

				bio->bi_io_vec[i].bv_page = pages[i];
				bio->bi_io_vec[i].bv_offset = 0;
				bio->bi_io_vec[i].bv_len = len;
				left -= len;
			}
			add_bio(rq, bio);
		} else {
			rq->shim_cookie = cookie;
			rq->__data_len = bytes; /* a discard's extent: no pages */
		}
		dispatch_add(rq, 0);
	});
	return 0;
}

/*
 * xenbus_dev_resume (drivers/xen/xenbus/xenbus_probe.c): the device's state is
 * Initialising again, then the driver's resume runs (blkfront_resume).
 */
int shim_resume(void)
{
	int ret = 0;

	xdev.state = XenbusStateInitialising;
	ENTRY(ret = driver->resume(&xdev));
	return ret;
}

int shim_remove(void)
{
	ENTRY(driver->remove(&xdev));
	return 0;
}

/*
 * The harness's own tests (not the driver's): a fault inside an entry point, where the
 * driver's would be.  1: a load from address 16, as from a member of a NULL structure
 * (SIGSEGV); 2: a read one byte past a heap block (ASan's heap-buffer-overflow; nothing
 * without ASan); 3: a shift past the width of int (UBSan's shift-exponent).
 */
int shim_selftest_fault(int kind)
{
	ENTRY({
		volatile int sink = 0;

		if (kind == 1) {
			sink = *(volatile int *)(uintptr_t)16;
		} else if (kind == 2) {
			volatile char *block = malloc(8);

			sink = block[8];
			free((void *)block);
		} else if (kind == 3) {
			volatile int by = 40;

			sink = 1 << by;
		}
		(void)sink;
	});
	return 0;
}

int shim_frontend_state(void) { return xdev.state; }

/*
 * What the block layer knows of the device from the driver's queue settings
 * (blk_queue_write_cache, blk_queue_max_discard_sectors): bit 0 a volatile write
 * cache (flushes are sent), bit 1 FUA, bit 2 discard.  No disk yet: nothing.
 */
int shim_queue_flags(void)
{
	if (!disk || !disk->queue)
		return 0;
	return (disk->queue->write_cache ? 1 : 0) | (disk->queue->fua ? 2 : 0) |
	       (disk->queue->limits.max_discard_sectors ? 4 : 0);
}
unsigned long shim_requests_live(void) { return requests_live; }
int shim_disk_added(void) { return disk && disk->added; }
unsigned long long shim_disk_capacity(void) { return disk ? disk->capacity : 0; }
int shim_delayed_scheduled(void) { return delayed_scheduled; }
