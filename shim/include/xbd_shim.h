/*
 * xbd_shim.h: the FreeBSD kernel, Xen and block.h environment that blkfront.c needs,
 * written anew for xbdspec (see docs/cdriver.md).  Force-included (-include) before
 * blkfront.c; every kernel declaration the driver uses comes from here.  Every service
 * that is an *event* (a bus_dma load outcome, a grant shortage, a xenstore read, the
 * interrupt, a sleep's time-out) is decided by the harness through shim/src/shim.c.
 */
#ifndef XBD_SHIM_H
#define XBD_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <inttypes.h>
#include <string.h>
#include <stdio.h>
#include <sys/types.h>

/* ------------------------------------------------------------------ errno (FreeBSD values) */
#define ENOENT 2
#define EIO 5
#define ENXIO 6
#define ENOMEM 12
#define EBUSY 16
#define EEXIST 17
#define EINVAL 22
#define ENOTTY 25
#define EFBIG 27
#define ENOSPC 28
#define ERANGE 34
#define EWOULDBLOCK 35
#define EAGAIN 35
#define EINPROGRESS 36
#define EOPNOTSUPP 45

/* ------------------------------------------------------------------ cdefs, param */
#define __FBSDID(s) static const char shim_fbsdid[] __attribute__((unused)) = s
#define __predict_false(x) __builtin_expect(!!(x), 0)
#define __predict_true(x) __builtin_expect(!!(x), 1)
#define __unused __attribute__((unused))
#define PAGE_SHIFT 12
#define PAGE_SIZE (1 << PAGE_SHIFT)
#define PAGE_MASK (PAGE_SIZE - 1)
#define powerof2(x) ((((x) - 1) & (x)) == 0)
#define nitems(x) (sizeof((x)) / sizeof((x)[0]))
#define MAX(a,b) (((a)>(b))?(a):(b)) /* sys/param.h, spelt as glibc's */
#define PRIBIO 16
typedef unsigned int u_int;
typedef unsigned long u_long;
typedef unsigned char u_char;
typedef unsigned short u_short;
typedef uint64_t vm_paddr_t;
typedef uintptr_t vm_offset_t;
typedef uint64_t bus_addr_t;
typedef uint64_t bus_size_t;
extern int hz;
extern u_long maxphys;
static inline int fls(int mask)
{
	return mask == 0 ? 0 : (int)(sizeof(int) * 8) - __builtin_clz((unsigned)mask);
}
/* The seed's only rmb() is xbd_int's (line 361, past its DISCONNECTED return): besides
 * the fence, the shim notes there that xbd_int ran, for xbd_h_dump_polled (shim.c). */
void shim_rmb(void);
#define rmb() shim_rmb()
#define wmb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define mb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define xen_rmb() rmb()
#define xen_wmb() wmb()
#define xen_mb() mb()

/* ------------------------------------------------------------------ queue.h (TAILQ) */
#define TAILQ_HEAD(name, type) struct name { struct type *tqh_first; struct type **tqh_last; }
#define TAILQ_ENTRY(type) struct { struct type *tqe_next; struct type **tqe_prev; }
#define TAILQ_FIRST(head) ((head)->tqh_first)
#define TAILQ_NEXT(elm, field) ((elm)->field.tqe_next)
#define TAILQ_EMPTY(head) ((head)->tqh_first == NULL)
#define TAILQ_INIT(head) do { (head)->tqh_first = NULL; (head)->tqh_last = &(head)->tqh_first; } while (0)
#define TAILQ_INSERT_TAIL(head, elm, field) do { \
	(elm)->field.tqe_next = NULL; (elm)->field.tqe_prev = (head)->tqh_last; \
	*(head)->tqh_last = (elm); (head)->tqh_last = &(elm)->field.tqe_next; } while (0)
#define TAILQ_INSERT_HEAD(head, elm, field) do { \
	if (((elm)->field.tqe_next = (head)->tqh_first) != NULL) \
		(head)->tqh_first->field.tqe_prev = &(elm)->field.tqe_next; \
	else (head)->tqh_last = &(elm)->field.tqe_next; \
	(head)->tqh_first = (elm); (elm)->field.tqe_prev = &(head)->tqh_first; } while (0)
/* QUEUE_MACRO_DEBUG-style: removing an unlinked element is reported, not followed. */
#define TAILQ_REMOVE(head, elm, field) do { \
	if ((elm)->field.tqe_prev == NULL) \
		shim_undefined("TAILQ_REMOVE", "element is not on a queue"); \
	if (((elm)->field.tqe_next) != NULL) \
		(elm)->field.tqe_next->field.tqe_prev = (elm)->field.tqe_prev; \
	else (head)->tqh_last = (elm)->field.tqe_prev; \
	*(elm)->field.tqe_prev = (elm)->field.tqe_next; \
	(elm)->field.tqe_next = NULL; (elm)->field.tqe_prev = NULL; } while (0)

/* ------------------------------------------------------------------ faults (panic, KASSERT) */
void panic(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void shim_kassert_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void shim_undefined(const char *where, const char *what) __attribute__((noreturn));
#define KASSERT(exp, msg) do { if (__predict_false(!(exp))) shim_kassert_fail msg; } while (0)
#define CTASSERT(x) _Static_assert(x, #x)

/* ------------------------------------------------------------------ printf, malloc */
int shim_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define printf(...) shim_printf(__VA_ARGS__)
struct malloc_type { const char *ks_shortdesc; };
#define MALLOC_DEFINE(type, shortdesc, longdesc) struct malloc_type type[1] = {{shortdesc}}
#define MALLOC_DECLARE(type) extern struct malloc_type type[1]
MALLOC_DECLARE(M_XENSTORE);
MALLOC_DECLARE(M_DEVBUF);
#define M_NOWAIT 0x0001
#define M_WAITOK 0x0002
#define M_ZERO 0x0100
void *shim_malloc(size_t size, struct malloc_type *type, int flags);
void shim_free(void *addr, struct malloc_type *type);
void *contigmalloc(unsigned long size, struct malloc_type *type, int flags, vm_paddr_t low,
		   vm_paddr_t high, unsigned long alignment, vm_paddr_t boundary);
void contigfree(void *addr, unsigned long size, struct malloc_type *type);
#define malloc(size, type, flags) shim_malloc((size), (type), (flags))
#define free(addr, type) shim_free((addr), (type))
#define vtophys(va) ((vm_paddr_t)(uintptr_t)(va))

/* ------------------------------------------------------------------ mutex, sleep */
struct mtx { const char *name; int depth; int recursions; };
/* glibc's C11 <threads.h> exports mtx_init/mtx_lock/...: rename ours so they never bind there */
#define mtx_init shim_mtx_init
#define mtx_destroy shim_mtx_destroy
#define mtx_lock shim_mtx_lock
#define mtx_unlock shim_mtx_unlock
#define mtx_assert shim_mtx_assert
#define MTX_DEF 0
#define MA_OWNED 1
#define MA_NOTOWNED 2
void mtx_init(struct mtx *m, const char *name, const char *type, int opts);
void mtx_destroy(struct mtx *m);
void mtx_lock(struct mtx *m);
void mtx_unlock(struct mtx *m);
void mtx_assert(struct mtx *m, int what);
int msleep(void *chan, struct mtx *mtx, int pri, const char *wmesg, int timo);
void wakeup(void *chan);
void HYPERVISOR_yield(void);

/* ------------------------------------------------------------------ newbus */
struct device;
typedef struct device *device_t;
typedef void (*devop_t)(void);
typedef struct { const char *name; devop_t func; } device_method_t;
typedef struct { const char *name; device_method_t *methods; size_t size; } driver_t;
#define DEVMETHOD(name, func) { #name, (devop_t)(func) }
#define DEVMETHOD_END { 0, 0 }
#define DRIVER_MODULE(name, busname, driver, evh, arg) driver_t *shim_driver = &driver
#define MODULE_DEPEND(...) struct shim_module_depend_unused
int bus_generic_shutdown(device_t dev);
void *device_get_softc(device_t dev);
int device_set_unit(device_t dev, int unit);
void device_set_desc(device_t dev, const char *desc);
const char *device_get_desc(device_t dev);
void device_quiet(device_t dev);
device_t device_get_parent(device_t dev);
int bus_print_child_footer(device_t parent, device_t child);
int device_printf(device_t dev, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------------ sysctl, sbuf */
struct sysctl_ctx_list { int unused; };
struct sysctl_oid_list { int unused; };
struct sysctl_oid { struct sysctl_oid_list oid_children; };
struct sysctl_req { char *buf; size_t len; };
#define SYSCTL_HANDLER_ARGS struct sysctl_oid *oidp, void *arg1, intmax_t arg2, struct sysctl_req *req
#define OID_AUTO (-1)
#define CTLFLAG_RD 0x80000000
#define CTLFLAG_RDTUN 0x80080000
#define CTLFLAG_MPSAFE 0x00040000
#define CTLTYPE_STRING 3
#define SYSCTL_NODE(parent, nbr, name, access, handler, descr) \
	struct sysctl_oid shim_sysctl_node_##parent##_##name
#define SYSCTL_INT(parent, nbr, name, access, ptr, val, descr) int *shim_tunable_##name = (ptr)
#define SYSCTL_CHILDREN(oid) (&(oid)->oid_children)
struct sysctl_ctx_list *device_get_sysctl_ctx(device_t dev);
struct sysctl_oid *device_get_sysctl_tree(device_t dev);
typedef int shim_sysctl_handler_t(SYSCTL_HANDLER_ARGS);
void shim_sysctl_add_uint(const char *name, unsigned *ptr);
void shim_sysctl_add_proc(const char *name, void *arg1, shim_sysctl_handler_t *handler);
#define SYSCTL_ADD_UINT(ctx, parent, nbr, name, access, ptr, val, descr) \
	shim_sysctl_add_uint((name), (ptr))
#define SYSCTL_ADD_PROC(ctx, parent, nbr, name, access, arg1, arg2, handler, fmt, descr) \
	shim_sysctl_add_proc((name), (arg1), (handler))
int sysctl_wire_old_buffer(struct sysctl_req *req, size_t len);
int shim_sysctl_out(struct sysctl_req *req, const void *p, size_t len);
#define SYSCTL_OUT(req, p, len) shim_sysctl_out((req), (p), (len))
struct sbuf { char *s_buf; int s_size; int s_len; int s_error; };
#define SBUF_FIXEDLEN 0
struct sbuf *sbuf_new(struct sbuf *s, char *buf, int length, int flags);
int sbuf_printf(struct sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sbuf_finish(struct sbuf *s);
ssize_t sbuf_len(struct sbuf *s);

/* ------------------------------------------------------------------ bio, disk */
struct bio;
struct disk;
struct thread;
TAILQ_HEAD(bio_queue, bio);
struct bio_queue_head { struct bio_queue queue; int total; };
#define BIO_READ 0x01
#define BIO_WRITE 0x02
#define BIO_DELETE 0x03
#define BIO_GETATTR 0x04
#define BIO_FLUSH 0x05
#define BIO_ERROR 0x01
#define BIO_DONE 0x02
#define BIO_ORDERED 0x08
struct bio {
	uint16_t bio_cmd;
	uint16_t bio_flags;
	struct disk *bio_disk;
	off_t bio_offset;
	long bio_bcount;
	char *bio_data;
	int bio_error;
	long bio_resid;
	int64_t bio_pblkno;
	TAILQ_ENTRY(bio) bio_queue;
	/* shim bookkeeping, not FreeBSD's */
	int shim_id;
	int shim_done_count;
};
void bioq_init(struct bio_queue_head *head);
void bioq_insert_tail(struct bio_queue_head *head, struct bio *bp);
void bioq_insert_head(struct bio_queue_head *head, struct bio *bp);
void bioq_remove(struct bio_queue_head *head, struct bio *bp);
struct bio *bioq_first(struct bio_queue_head *head);
void biodone(struct bio *bp);
void biofinish(struct bio *bp, void *stat, int error);
typedef int disk_open_t(struct disk *);
typedef int disk_close_t(struct disk *);
typedef int disk_ioctl_t(struct disk *, u_long, void *, int, struct thread *);
typedef void disk_strategy_t(struct bio *);
typedef int dumper_t(void *, void *, off_t, size_t);
#define DISKFLAG_CANFLUSHCACHE 0x8
#define DISKFLAG_UNMAPPED_BIO 0x10
#define DISK_VERSION 0x6
struct disk {
	disk_open_t *d_open;
	disk_close_t *d_close;
	disk_strategy_t *d_strategy;
	disk_ioctl_t *d_ioctl;
	dumper_t *d_dump;
	u_int d_flags;
	const char *d_name;
	u_int d_unit;
	u_int d_sectorsize;
	off_t d_mediasize;
	u_int d_fwsectors;
	u_int d_fwheads;
	u_int d_maxsize;
	off_t d_stripeoffset;
	off_t d_stripesize;
	void *d_drv1;
	/* shim bookkeeping */
	int shim_created, shim_destroyed, shim_gone, shim_resizes;
};
struct disk *disk_alloc(void);
void disk_create(struct disk *disk, int version);
void disk_destroy(struct disk *disk);
void disk_gone(struct disk *disk);
int disk_resize(struct disk *disk, int flag);
void disk_err(struct bio *bp, const char *what, int blkdone, int nl);

/* ------------------------------------------------------------------ bus_dma */
typedef struct shim_dma_tag *bus_dma_tag_t;
typedef struct shim_dma_map *bus_dmamap_t;
typedef struct { bus_addr_t ds_addr; bus_size_t ds_len; } bus_dma_segment_t;
typedef void bus_dmamap_callback_t(void *, bus_dma_segment_t *, int, int);
typedef void bus_dma_lock_t(void *, int);
typedef int bus_dma_filter_t(void *, bus_addr_t);
#define BUS_SPACE_MAXADDR (~(bus_addr_t)0)
#define BUS_DMA_ALLOCNOW 0x04
#define BUS_DMASYNC_PREREAD 1
#define BUS_DMASYNC_POSTREAD 2
#define BUS_DMASYNC_PREWRITE 4
#define BUS_DMASYNC_POSTWRITE 8
bus_dma_tag_t bus_get_dma_tag(device_t dev);
void busdma_lock_mutex(void *arg, int op);
int bus_dma_tag_create(bus_dma_tag_t parent, bus_size_t alignment, bus_addr_t boundary,
		       bus_addr_t lowaddr, bus_addr_t highaddr, bus_dma_filter_t *filter,
		       void *filterarg, bus_size_t maxsize, int nsegments, bus_size_t maxsegsz,
		       int flags, bus_dma_lock_t *lockfunc, void *lockfuncarg,
		       bus_dma_tag_t *dmat);
int bus_dma_tag_destroy(bus_dma_tag_t dmat);
int bus_dmamap_create(bus_dma_tag_t dmat, int flags, bus_dmamap_t *mapp);
int bus_dmamap_destroy(bus_dma_tag_t dmat, bus_dmamap_t map);
int bus_dmamap_load(bus_dma_tag_t dmat, bus_dmamap_t map, void *buf, bus_size_t buflen,
		    bus_dmamap_callback_t *callback, void *callback_arg, int flags);
int bus_dmamap_load_bio(bus_dma_tag_t dmat, bus_dmamap_t map, struct bio *bio,
			bus_dmamap_callback_t *callback, void *callback_arg, int flags);
void bus_dmamap_sync(bus_dma_tag_t dmat, bus_dmamap_t map, int op);
void bus_dmamap_unload(bus_dma_tag_t dmat, bus_dmamap_t map);

/* ------------------------------------------------------------------ interrupts, event channel */
#define INTR_TYPE_BIO 0x8
#define INTR_MPSAFE 0x200
typedef struct shim_intr *xen_intr_handle_t;
typedef int driver_filter_t(void *);
typedef void driver_intr_t(void *);
int xen_intr_alloc_and_bind_local_port(device_t dev, u_int remote_domain,
				       driver_filter_t filter, driver_intr_t handler, void *arg,
				       int flags, xen_intr_handle_t *handlep);
void xen_intr_unbind(xen_intr_handle_t *handlep);
void xen_intr_signal(xen_intr_handle_t handle);
unsigned xen_intr_port(xen_intr_handle_t handle);
int xen_hvm_domain(void);
int xen_pv_disks_disabled(void);
extern int xen_suspend_cancelled;

/* ------------------------------------------------------------------ Xen's public headers */
/* Xen's structures and ring macros are the real ones: libxen-dev's /usr/include/xen/
 * (Xen 4.17), through the thin xen/interface/... headers FreeBSD's tree has for them. */
#if !__has_include(<xen/io/blkif.h>) || !__has_include(<xen/io/ring.h>) || \
	!__has_include(<xen/io/xenbus.h>) || !__has_include(<xen/io/protocols.h>)
#error "Xen's public headers (/usr/include/xen/io/blkif.h, ring.h, xenbus.h, protocols.h) are absent: run `make xen-headers` (Debian's libxen-dev)"
#endif
/* FreeBSD's xen-os.h: the interface version it is written for (so ring.h leaves xen_mb and
 * friends to the kernel: the shim's, above). */
#ifndef __XEN_INTERFACE_VERSION__
#define __XEN_INTERFACE_VERSION__ 0x00030208
#endif

/* ------------------------------------------------------------------ grant tables */
#include <xen/interface/grant_table.h> /* grant_ref_t; domid_t (xen.h) */
#define GRANT_REF_INVALID 0xffffffff /* FreeBSD's xen-os.h */
struct gnttab_free_callback {
	struct gnttab_free_callback *next;
	void (*fn)(void *);
	void *arg;
	uint16_t count;
};
int gnttab_alloc_grant_references(uint16_t count, grant_ref_t *pprivate_head);
void gnttab_free_grant_references(grant_ref_t private_head);
int gnttab_claim_grant_reference(grant_ref_t *pprivate_head);
void gnttab_grant_foreign_access_ref(grant_ref_t ref, domid_t domid, unsigned long frame,
				     int readonly);
int gnttab_grant_foreign_access(domid_t domid, unsigned long frame, int readonly,
				grant_ref_t *result);
int gnttab_end_foreign_access_ref(grant_ref_t ref);
void gnttab_end_foreign_access_references(u_int count, grant_ref_t *refs);
void gnttab_request_free_callback(struct gnttab_free_callback *callback,
				  void (*fn)(void *), void *arg, uint16_t count);
void gnttab_cancel_free_callback(struct gnttab_free_callback *callback);

/* ------------------------------------------------------------------ xenstore, xenbus */
#include <xen/interface/io/xenbus.h> /* enum xenbus_state, XenbusState */
struct xs_transaction { uint32_t id; };
#define XST_NIL ((struct xs_transaction){0})
int xs_read(struct xs_transaction t, const char *dir, const char *node, u_int *len,
	    void **result);
int xs_scanf(struct xs_transaction t, const char *dir, const char *node, int *scancountp,
	     const char *fmt, ...) __attribute__((format(scanf, 5, 6)));
int xs_printf(struct xs_transaction t, const char *dir, const char *node, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
int xs_gather(struct xs_transaction t, const char *dir, ...);
const char *xenbus_get_node(device_t dev);
const char *xenbus_get_otherend_path(device_t dev);
const char *xenbus_get_type(device_t dev);
int xenbus_get_otherend_id(device_t dev);
XenbusState xenbus_get_state(device_t dev);
XenbusState xenbus_get_otherend_state(device_t dev);
int xenbus_set_state(device_t dev, XenbusState state);
int xenbus_grant_ring(device_t dev, unsigned long ring_mfn, grant_ref_t *refp);
void xenbus_dev_fatal(device_t dev, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void xenbus_dev_error(device_t dev, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------ ring.h, blkif.h */
/* FreeBSD's sys/xen/blkif.h: Xen's io/ring.h (with the shim's test hooks), io/blkif.h and
 * io/protocols.h, and what FreeBSD adds (BLKIF_MAX_RING_REQUESTS). */
#include <xen/blkif.h>

/* ------------------------------------------------------------------ block.h */
#include "xbd_block.h"

#endif /* XBD_SHIM_H */
