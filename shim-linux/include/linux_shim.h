/*
 * A Linux kernel shim for drivers/block/xen-blkfront.c (Linux 6.1), written for xbdspec.
 *
 * Force-included (-include linux_shim.h) before the unmodified driver; the kernel headers
 * the driver names (<linux/...>, <xen/xenbus.h>, ...) are empty stubs beside this file,
 * and Xen's interface headers (<xen/interface/...>) are the kernel's own, extracted into
 * build/linux/.  It declares only what the driver uses.  The implementations are in
 * shim-linux/src/shim.c: xenbus, grants, event channels and page memory go to callbacks
 * the harness installs (xbdspec/linux/adapter.py); blk-mq is a small synchronous one the
 * harness feeds.
 */
#ifndef LINUX_SHIM_H
#define LINUX_SHIM_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <errno.h>

/*
 * The kernel's memcpy and memset (arch/x86/lib/memcpy_64.S, memset_64.S) are declared
 * without glibc's nonnull: copying zero bytes from NULL is a no-op in the kernel, and the
 * driver does it (xlbd_reserve_minors's first call copies nr_minors == 0 longs from
 * minors == NULL).  With glibc's declarations that is undefined behaviour (UBSan reports
 * it, and the compiler may assume the pointer non-null after the call).
 */
static inline void *shim_memcpy(void *to, const void *from, size_t len)
{
	return len ? memcpy(to, from, len) : to;
}
static inline void *shim_memset(void *s, int c, size_t len)
{
	return len ? memset(s, c, len) : s;
}
#define memcpy(to, from, len) shim_memcpy((to), (from), (len))
#define memset(s, c, len) shim_memset((s), (c), (len))

/* ---- compiler and types */
#define __user
#define __iomem
#define __init
#define __exit
#define __read_mostly
#define __must_check
#define __packed __attribute__((packed))
#define fallthrough __attribute__((fallthrough))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int8_t s8;
typedef int16_t s16;
typedef int32_t s32;
typedef int64_t s64;
typedef uint64_t sector_t;
typedef unsigned int gfp_t;
typedef unsigned int fmode_t;
typedef uint8_t blk_status_t;
typedef unsigned int blk_opf_t;

#define BITS_PER_LONG 64
#define BITS_TO_LONGS(n) (((n) + BITS_PER_LONG - 1) / BITS_PER_LONG)
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define min(a, b) ((a) < (b) ? (a) : (b))
#define max(a, b) ((a) > (b) ? (a) : (b))
#define min_t(t, a, b) ((t)(a) < (t)(b) ? (t)(a) : (t)(b))
#define max_t(t, a, b) ((t)(a) > (t)(b) ? (t)(a) : (t)(b))
#define struct_size(p, member, n) (sizeof(*(p)) + sizeof((p)->member[0]) * (size_t)(n))
#define READ_ONCE(x) (*(volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))
#define barrier() __asm__ __volatile__("" ::: "memory")
#define mb() __sync_synchronize()
#define rmb() __sync_synchronize()
#define wmb() __sync_synchronize()
#define virt_mb() __sync_synchronize()
#define virt_rmb() __sync_synchronize()
#define virt_wmb() __sync_synchronize()
#define BUILD_BUG_ON(c) _Static_assert(!(c), #c)
#define sector_div(n, base) ({ unsigned int _r = (n) % (base); (n) /= (base); _r; })

#define MAX_ERRNO 4095
#define IS_ERR_VALUE(x) ((unsigned long)(void *)(x) >= (unsigned long)-MAX_ERRNO)
static inline void *ERR_PTR(long error) { return (void *)error; }
static inline long PTR_ERR(const void *ptr) { return (long)ptr; }
static inline bool IS_ERR(const void *ptr) { return IS_ERR_VALUE((unsigned long)ptr); }
#define ENOTSUPP 524

/* ---- printk, BUG, WARN */
void shim_printk(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void shim_bug(const char *file, int line) __attribute__((noreturn));
#define KERN_INFO ""
#define KERN_WARNING ""
#define KERN_ERR ""
#define KERN_ALERT ""
#define KERN_DEBUG ""
#define printk(...) shim_printk(__VA_ARGS__)
#define pr_info(...) shim_printk(__VA_ARGS__)
#define pr_warn(...) shim_printk(__VA_ARGS__)
#define pr_alert(...) shim_printk(__VA_ARGS__)
#define pr_err(...) shim_printk(__VA_ARGS__)
#define pr_debug(...) do { } while (0)
#define pr_warn_ratelimited(...) shim_printk(__VA_ARGS__)
#define dev_dbg(dev, ...) do { (void)(dev); } while (0)
#define dev_dbg_ratelimited(dev, ...) do { (void)(dev); } while (0)
#define dev_warn(dev, ...) do { (void)(dev); shim_printk(__VA_ARGS__); } while (0)
#define dev_err(dev, ...) do { (void)(dev); shim_printk(__VA_ARGS__); } while (0)
#define dev_info(dev, ...) do { (void)(dev); shim_printk(__VA_ARGS__); } while (0)
#define BUG() shim_bug(__FILE__, __LINE__)
#define BUG_ON(c) do { if (unlikely(c)) shim_bug(__FILE__, __LINE__); } while (0)
#define WARN(c, ...) ({ int _c = !!(c); if (_c) shim_printk(__VA_ARGS__); _c; })
#define WARN_ON(c) ({ int _c = !!(c); if (_c) shim_printk("WARN_ON %s:%d\n", __FILE__, __LINE__); _c; })

/* ---- modules */
#define THIS_MODULE ((struct module *)0)
struct module;
/* a module parameter is the driver's static variable: an accessor the harness can call */
#define module_param_named(name, var, type, perm) \
	void *shim_param_##name(void); \
	void *shim_param_##name(void) { return &(var); }
#define module_param(var, type, perm) module_param_named(var, var, type, perm)
#define MODULE_PARM_DESC(name, desc)
#define MODULE_DESCRIPTION(d)
#define MODULE_LICENSE(l)
#define MODULE_ALIAS(a)
#define MODULE_ALIAS_BLOCKDEV_MAJOR(m)
/* the init and exit functions become the shim's entry points */
#define module_init(fn) int shim_module_init(void) { return fn(); }
#define module_exit(fn) void shim_module_exit(void) { fn(); }

/* ---- memory */
#define GFP_KERNEL 0x1u
#define GFP_NOIO 0x2u
#define GFP_ATOMIC 0x4u
#define __GFP_ZERO 0x100u
#define __GFP_HIGH 0x200u
#define NUMA_NO_NODE (-1)
#define PAGE_SHIFT 12
#define PAGE_SIZE (1UL << PAGE_SHIFT)
#define XEN_PAGE_SHIFT 12
#define XEN_PAGE_SIZE (1UL << XEN_PAGE_SHIFT)
#define XEN_PFN_PER_PAGE (PAGE_SIZE / XEN_PAGE_SIZE)
#define offset_in_page(p) ((unsigned long)(p) & (PAGE_SIZE - 1))

struct list_head {
	struct list_head *next, *prev;
};

/* A page: its memory is the harness's (a bytearray it can read as the driver wrote it). */
struct page {
	void *virt;
	unsigned long pfn;
	struct list_head lru;
};

void *kmalloc(size_t size, gfp_t gfp);
void *kzalloc(size_t size, gfp_t gfp);
void *kcalloc(size_t n, size_t size, gfp_t gfp);
void *kvcalloc(size_t n, size_t size, gfp_t gfp);
void kfree(const void *p);
void kvfree(const void *p);
struct page *alloc_page(gfp_t gfp);
void __free_page(struct page *page);
void *page_address(const struct page *page);
#define kmap_atomic(page) page_address(page)
#define kunmap_atomic(addr) do { (void)(addr); } while (0)
unsigned int memalloc_noio_save(void);
void memalloc_noio_restore(unsigned int flags);
#define put_user(x, p) ({ *(p) = (x); 0; })

/* ---- lists */
#define LIST_HEAD_INIT(name) { &(name), &(name) }
#define LIST_HEAD(name) struct list_head name = LIST_HEAD_INIT(name)
static inline void INIT_LIST_HEAD(struct list_head *l) { l->next = l; l->prev = l; }
static inline void __list_add(struct list_head *n, struct list_head *prev, struct list_head *next)
{
	next->prev = n; n->next = next; n->prev = prev; prev->next = n;
}
static inline void list_add(struct list_head *n, struct list_head *h) { __list_add(n, h, h->next); }
static inline void list_add_tail(struct list_head *n, struct list_head *h) { __list_add(n, h->prev, h); }
static inline void list_del(struct list_head *e)
{
	e->next->prev = e->prev; e->prev->next = e->next; e->next = e->prev = NULL;
}
static inline void list_del_init(struct list_head *e) { list_del(e); INIT_LIST_HEAD(e); }
static inline int list_empty(const struct list_head *h) { return h->next == h; }
static inline void list_splice_tail(struct list_head *list, struct list_head *head)
{
	if (!list_empty(list)) {
		struct list_head *first = list->next, *last = list->prev, *at = head->prev;
		first->prev = at; at->next = first; last->next = head; head->prev = last;
	}
}
static inline void list_splice_tail_init(struct list_head *list, struct list_head *head)
{
	list_splice_tail(list, head); INIT_LIST_HEAD(list);
}
static inline void list_splice_init(struct list_head *list, struct list_head *head)
{
	if (!list_empty(list)) {
		struct list_head *first = list->next, *last = list->prev, *at = head->next;
		first->prev = head; head->next = first; last->next = at; at->prev = last;
	}
	INIT_LIST_HEAD(list);
}
#define list_entry(ptr, type, member) container_of(ptr, type, member)
#define list_first_entry(ptr, type, member) list_entry((ptr)->next, type, member)
#define list_next_entry(pos, member) list_entry((pos)->member.next, __typeof__(*(pos)), member)
#define list_for_each_entry(pos, head, member) \
	for (pos = list_first_entry(head, __typeof__(*pos), member); &pos->member != (head); \
	     pos = list_next_entry(pos, member))
#define list_for_each_entry_safe(pos, n, head, member) \
	for (pos = list_first_entry(head, __typeof__(*pos), member), \
	     n = list_next_entry(pos, member); &pos->member != (head); \
	     pos = n, n = list_next_entry(n, member))

/* ---- bitmaps */
unsigned long find_next_bit(const unsigned long *addr, unsigned long size, unsigned long off);
void bitmap_set(unsigned long *map, unsigned int start, unsigned int nr);
void bitmap_clear(unsigned long *map, unsigned int start, unsigned int nr);

/* ---- locking (one thread: the harness calls in one at a time) */
typedef struct { int locked; } spinlock_t;
struct mutex { int locked; };
#define DEFINE_SPINLOCK(x) spinlock_t x = { 0 }
#define DEFINE_MUTEX(x) struct mutex x = { 0 }
#define spin_lock_init(l) ((l)->locked = 0)
#define spin_lock(l) ((l)->locked++)
#define spin_unlock(l) ((l)->locked--)
#define spin_lock_irq(l) spin_lock(l)
#define spin_unlock_irq(l) spin_unlock(l)
#define spin_lock_irqsave(l, f) do { (f) = 0; spin_lock(l); } while (0)
#define spin_unlock_irqrestore(l, f) do { (void)(f); spin_unlock(l); } while (0)
#define mutex_init(m) ((m)->locked = 0)
#define mutex_lock(m) ((m)->locked++)
#define mutex_unlock(m) ((m)->locked--)

/* ---- workqueues (run when the harness says: shim_run_work) */
struct work_struct;
typedef void (*work_func_t)(struct work_struct *work);
struct work_struct {
	work_func_t func;
	int pending;
};
struct delayed_work {
	struct work_struct work;
};
#define HZ 100
#define INIT_WORK(w, f) do { (w)->func = (f); (w)->pending = 0; } while (0)
#define INIT_DELAYED_WORK(w, f) INIT_WORK(&(w)->work, f)
bool schedule_work(struct work_struct *work);
bool schedule_delayed_work(struct delayed_work *dwork, unsigned long delay);
bool flush_work(struct work_struct *work);
bool cancel_delayed_work_sync(struct delayed_work *dwork);
unsigned int num_online_cpus(void);

/* ---- scatterlists */
struct scatterlist {
	struct page *page;
	unsigned int offset;
	unsigned int length;
	bool end;
};
void sg_init_table(struct scatterlist *sg, unsigned int nents);
static inline struct page *sg_page(struct scatterlist *sg) { return sg->page; }
static inline struct scatterlist *sg_next(struct scatterlist *sg) { return sg->end ? NULL : sg + 1; }
#define for_each_sg(sglist, sg, nr, __i) \
	for (__i = 0, sg = (sglist); __i < (nr); __i++, sg = sg_next(sg))

/* ---- the block layer */
#define SECTOR_SHIFT 9
#define MINORBITS 20
#define DISK_NAME_LEN 32
#define GENHD_FL_REMOVABLE 0x1
#define XENVBD_MAJOR 202
#define SCSI_DISK0_MAJOR 8
#define SCSI_DISK1_MAJOR 65
#define SCSI_DISK7_MAJOR 71
#define SCSI_DISK8_MAJOR 128
#define SCSI_DISK15_MAJOR 135
#define IDE0_MAJOR 3
#define IDE1_MAJOR 22
#define IDE2_MAJOR 33
#define IDE3_MAJOR 34
#define IDE4_MAJOR 56
#define IDE5_MAJOR 57
#define IDE6_MAJOR 88
#define IDE7_MAJOR 89
#define IDE8_MAJOR 90
#define IDE9_MAJOR 91
#define QUEUE_FLAG_VIRT 1
#define CDROMMULTISESSION 0x5310
#define CDROM_GET_CAPABILITY 0x5331
struct cdrom_multisession {
	char addr[8];
	unsigned char xa_flag : 1;
	unsigned char addr_format;
};
struct hd_geometry {
	unsigned char heads;
	unsigned char sectors;
	unsigned short cylinders;
	unsigned long start;
};

#define BLK_STS_OK 0
#define BLK_STS_NOTSUPP 1
#define BLK_STS_IOERR 10
#define BLK_STS_RESOURCE 9
#define BLK_STS_DEV_RESOURCE 13

enum req_op {
	REQ_OP_READ = 0,
	REQ_OP_WRITE = 1,
	REQ_OP_FLUSH = 2,
	REQ_OP_DISCARD = 3,
	REQ_OP_SECURE_ERASE = 5,
	REQ_OP_DRV_IN = 34,
};
#define REQ_OP_MASK 0xffu
#define REQ_FUA (1u << 17)
#define REQ_PREFLUSH (1u << 18)

struct bio_vec {
	struct page *bv_page;
	unsigned int bv_len;
	unsigned int bv_offset;
};
struct bio {
	struct bio *bi_next;
	unsigned long shim_cookie; /* the harness's bio id */
	unsigned int shim_op;      /* the request's cmd_flags */
	sector_t shim_sector;
	unsigned int bi_vcnt;
	struct bio_vec *bi_io_vec;
};
struct bio_list {
	struct bio *head, *tail;
};

struct request_queue;
struct blk_mq_hw_ctx;
struct request {
	struct request_queue *q;
	blk_opf_t cmd_flags;
	sector_t __sector;
	unsigned int __data_len;
	unsigned short nr_phys_segments;
	struct bio *bio, *biotail;
	struct list_head queuelist;
	int tag;
	int started;
	unsigned long shim_cookie; /* the harness's bio id */
	struct blk_mq_hw_ctx *hctx;
	struct request *shim_next; /* the shim's dispatch and requeue lists */
	unsigned long shim_seq; /* its number: picks its hardware queue (blk-mq's CPU map) */
	/* the driver's pdu (tag_set.cmd_size) follows */
};
static inline enum req_op req_op(const struct request *rq) { return rq->cmd_flags & REQ_OP_MASK; }
static inline bool op_is_write(unsigned int op) { return op & 1; }
static inline int rq_data_dir(const struct request *rq) { return op_is_write(req_op(rq)) ? 1 : 0; }
static inline sector_t blk_rq_pos(const struct request *rq) { return rq->__sector; }
static inline unsigned int blk_rq_bytes(const struct request *rq) { return rq->__data_len; }
static inline unsigned int blk_rq_sectors(const struct request *rq) { return rq->__data_len >> 9; }
static inline bool blk_rq_is_passthrough(struct request *rq) { return req_op(rq) >= REQ_OP_DRV_IN; }
static inline void *blk_mq_rq_to_pdu(struct request *rq) { return rq + 1; }
static inline bool blk_should_fake_timeout(struct request_queue *q) { (void)q; return false; }

struct queue_limits {
	unsigned int max_hw_sectors;
	unsigned int max_segments;
	unsigned int max_segment_size;
	unsigned int logical_block_size;
	unsigned int physical_block_size;
	unsigned long seg_boundary_mask;
	unsigned int max_discard_sectors;
	unsigned int max_secure_erase_sectors;
	unsigned int discard_granularity;
	unsigned int discard_alignment;
	unsigned int dma_alignment;
};
struct request_queue {
	void *queuedata;
	struct queue_limits limits;
	struct blk_mq_tag_set *tag_set;
	unsigned long queue_flags;
	bool write_cache, fua;
};

struct blk_mq_queue_data {
	struct request *rq;
	bool last;
};
struct blk_mq_ops {
	blk_status_t (*queue_rq)(struct blk_mq_hw_ctx *, const struct blk_mq_queue_data *);
	void (*complete)(struct request *);
};
#define BLK_MQ_F_SHOULD_MERGE 1
struct blk_mq_tag_set {
	const struct blk_mq_ops *ops;
	unsigned int nr_hw_queues;
	unsigned int queue_depth;
	int numa_node;
	unsigned int flags;
	unsigned int cmd_size;
	void *driver_data;
	struct blk_mq_hw_ctx *hctxs; /* the shim's */
};
struct blk_mq_hw_ctx {
	struct request_queue *queue;
	unsigned int queue_num;
	int stopped;
};

struct block_device;
struct gendisk;
struct block_device_operations {
	struct module *owner;
	int (*getgeo)(struct block_device *, struct hd_geometry *);
	int (*ioctl)(struct block_device *, fmode_t, unsigned, unsigned long);
	int (*compat_ioctl)(struct block_device *, fmode_t, unsigned, unsigned long);
};
int blkdev_compat_ptr_ioctl(struct block_device *, fmode_t, unsigned, unsigned long);
struct gendisk {
	int major, first_minor, minors;
	char disk_name[DISK_NAME_LEN];
	const struct block_device_operations *fops;
	struct request_queue *queue;
	void *private_data;
	int flags;
	sector_t capacity;
	int ro, dead, added;
};
struct block_device {
	struct gendisk *bd_disk;
};

int blk_mq_alloc_tag_set(struct blk_mq_tag_set *set);
void blk_mq_free_tag_set(struct blk_mq_tag_set *set);
struct gendisk *shim_blk_mq_alloc_disk(struct blk_mq_tag_set *set, void *queuedata);
#define blk_mq_alloc_disk(set, qd) shim_blk_mq_alloc_disk(set, qd)
void put_disk(struct gendisk *disk);
void del_gendisk(struct gendisk *disk);
int device_add_disk(void *parent, struct gendisk *disk, void *groups);
void blk_mark_disk_dead(struct gendisk *disk);
void set_capacity(struct gendisk *disk, sector_t size);
bool set_capacity_and_notify(struct gendisk *disk, sector_t size);
sector_t get_capacity(struct gendisk *disk);
void set_disk_ro(struct gendisk *disk, bool ro);
int register_blkdev(unsigned int major, const char *name);
void unregister_blkdev(unsigned int major, const char *name);
void blk_mq_start_request(struct request *rq);
void blk_mq_end_request(struct request *rq, blk_status_t error);
bool blk_mq_complete_request_remote(struct request *rq);
void blk_mq_complete_request(struct request *rq);
void blk_mq_requeue_request(struct request *rq, bool kick);
void blk_mq_kick_requeue_list(struct request_queue *q);
void blk_mq_stop_hw_queue(struct blk_mq_hw_ctx *hctx);
void blk_mq_stop_hw_queues(struct request_queue *q);
void blk_mq_start_stopped_hw_queues(struct request_queue *q, bool async);
void blk_mq_update_nr_hw_queues(struct blk_mq_tag_set *set, int nr);
void blk_mq_freeze_queue(struct request_queue *q);
void blk_mq_unfreeze_queue(struct request_queue *q);
void blk_mq_quiesce_queue(struct request_queue *q);
void blk_mq_unquiesce_queue(struct request_queue *q);
int blk_rq_map_sg(struct request_queue *q, struct request *rq, struct scatterlist *sglist);
void blk_queue_flag_set(unsigned int flag, struct request_queue *q);
void blk_queue_max_discard_sectors(struct request_queue *q, unsigned int n);
void blk_queue_max_secure_erase_sectors(struct request_queue *q, unsigned int n);
void blk_queue_logical_block_size(struct request_queue *q, unsigned int n);
void blk_queue_physical_block_size(struct request_queue *q, unsigned int n);
void blk_queue_max_hw_sectors(struct request_queue *q, unsigned int n);
void blk_queue_segment_boundary(struct request_queue *q, unsigned long mask);
void blk_queue_max_segment_size(struct request_queue *q, unsigned int n);
void blk_queue_max_segments(struct request_queue *q, unsigned short n);
void blk_queue_dma_alignment(struct request_queue *q, int mask);
void blk_queue_write_cache(struct request_queue *q, bool wc, bool fua);
void bio_list_add(struct bio_list *bl, struct bio *bio);
struct bio *bio_list_pop(struct bio_list *bl);
static inline void bio_list_init(struct bio_list *bl) { bl->head = bl->tail = NULL; }
void submit_bio(struct bio *bio);
void bio_list_merge(struct bio_list *bl, struct bio_list *bl2);
#define rq_for_each_bio(_bio, rq) for (_bio = (rq)->bio; _bio; _bio = _bio->bi_next)

/* ---- the device model and Xen's environment */
struct device {
	void *driver_data;
};
static inline void *dev_get_drvdata(const struct device *dev) { return dev->driver_data; }
static inline void dev_set_drvdata(struct device *dev, void *d) { dev->driver_data = d; }
#define xen_domain() 1
#define xen_pv_domain() 1
#define xen_hvm_domain() 0
#define xen_has_pv_disk_devices() 1
#define xen_has_pv_and_legacy_disk_devices() 0
unsigned long simple_strtoul(const char *cp, char **endp, unsigned int base);

/* ---- Xen's interface headers, the kernel's own */
typedef unsigned long xen_pfn_t;
typedef unsigned long xen_ulong_t;
#define __DEFINE_GUEST_HANDLE(name, type) typedef struct { type *p; } __guest_handle_##name
#define DEFINE_GUEST_HANDLE_STRUCT(name) __DEFINE_GUEST_HANDLE(name, struct name)
#define DEFINE_GUEST_HANDLE(name) __DEFINE_GUEST_HANDLE(name, name)
#define GUEST_HANDLE(name) __guest_handle_##name
__DEFINE_GUEST_HANDLE(uchar, unsigned char);
__DEFINE_GUEST_HANDLE(uint, unsigned int);
DEFINE_GUEST_HANDLE(char);
DEFINE_GUEST_HANDLE(int);
DEFINE_GUEST_HANDLE(void);
DEFINE_GUEST_HANDLE(uint64_t);
DEFINE_GUEST_HANDLE(uint32_t);
DEFINE_GUEST_HANDLE(xen_pfn_t);
DEFINE_GUEST_HANDLE(xen_ulong_t);
#define set_xen_guest_handle(hnd, val) do { (hnd).p = val; } while (0)
struct arch_shared_info { unsigned long max_pfn; };
struct arch_vcpu_info { unsigned long cr2; unsigned long pad; };
struct xen_callback { unsigned long cs; unsigned long eip; };
typedef long xen_long_t;
#define MAX_VIRT_CPUS 32
struct pvclock_vcpu_time_info {
	u32 version, pad0;
	u64 tsc_timestamp, system_time;
	u32 tsc_to_system_mul;
	s8 tsc_shift;
	u8 flags, pad[2];
};
struct pvclock_wall_clock {
	u32 version, sec, nsec;
};
#include <xen/interface/grant_table.h>
#include <xen/interface/io/xenbus.h>

/* ---- grant tables */
#define INVALID_GRANT_REF ((grant_ref_t)-1)
#define GNTTAB_RESERVED_XENSTORE 1
struct gnttab_free_callback {
	struct gnttab_free_callback *next;
	void (*fn)(void *);
	void *arg;
	u16 count;
	int queued;
};
typedef void (*xen_grant_fn_t)(unsigned long gfn, unsigned int offset, unsigned int len,
			       void *data);
int gnttab_alloc_grant_references(u16 count, grant_ref_t *pprivate_head);
void gnttab_free_grant_references(grant_ref_t head);
int gnttab_claim_grant_reference(grant_ref_t *pprivate_head);
void gnttab_release_grant_reference(grant_ref_t *private_head, grant_ref_t release);
void gnttab_grant_foreign_access_ref(grant_ref_t ref, domid_t domid, unsigned long frame,
				     int readonly);
int gnttab_grant_foreign_access(domid_t domid, unsigned long frame, int readonly);
bool gnttab_try_end_foreign_access(grant_ref_t ref);
void gnttab_end_foreign_access(grant_ref_t ref, struct page *page);
void gnttab_request_free_callback(struct gnttab_free_callback *callback, void (*fn)(void *),
				  void *arg, u16 count);
void gnttab_cancel_free_callback(struct gnttab_free_callback *callback);
unsigned long xen_page_to_gfn(struct page *page);
unsigned long virt_to_gfn(void *v);
static inline void gnttab_page_grant_foreign_access_ref_one(grant_ref_t ref, domid_t domid,
							    struct page *page, int readonly)
{
	gnttab_grant_foreign_access_ref(ref, domid, xen_page_to_gfn(page), readonly);
}
static inline unsigned int gnttab_count_grant(unsigned int start, unsigned int len)
{
	return DIV_ROUND_UP(offset_in_page(start) + len, XEN_PAGE_SIZE);
}
void gnttab_foreach_grant_in_range(struct page *page, unsigned int offset, unsigned int len,
				   xen_grant_fn_t fn, void *data);

/* ---- event channels and irqs */
typedef int irqreturn_t;
#define IRQ_NONE 0
#define IRQ_HANDLED 1
typedef irqreturn_t (*irq_handler_t)(int, void *);
#define XEN_EOI_FLAG_SPURIOUS 0x1
int bind_evtchn_to_irqhandler_lateeoi(unsigned int evtchn, irq_handler_t handler,
				      unsigned long irqflags, const char *devname, void *dev_id);
void unbind_from_irqhandler(unsigned int irq, void *dev_id);
void notify_remote_via_irq(int irq);
void xen_irq_lateeoi(unsigned int irq, unsigned int eoi_flags);

/* ---- xenbus */
struct xenbus_transaction {
	u32 id;
};
#define XBT_NIL ((struct xenbus_transaction){ 0 })
#define XENBUS_MAX_RING_GRANT_ORDER 4
#define XENBUS_MAX_RING_GRANTS (1U << XENBUS_MAX_RING_GRANT_ORDER)
#define XENBUS_EXIST_ERR(err) ((err) == -ENOENT || (err) == -ERANGE)
struct xenbus_device {
	const char *devicetype;
	const char *nodename;
	const char *otherend;
	int otherend_id;
	enum xenbus_state state;
	struct device dev;
};
struct xenbus_device_id {
	char devicetype[32];
};
struct xenbus_driver {
	const struct xenbus_device_id *ids;
	int (*probe)(struct xenbus_device *dev, const struct xenbus_device_id *id);
	void (*otherend_changed)(struct xenbus_device *dev, enum xenbus_state backend_state);
	void (*remove)(struct xenbus_device *dev);
	int (*suspend)(struct xenbus_device *dev);
	int (*resume)(struct xenbus_device *dev);
	int (*is_ready)(struct xenbus_device *dev);
};
int xenbus_register_frontend(struct xenbus_driver *drv);
void xenbus_unregister_driver(struct xenbus_driver *drv);
void *xenbus_read(struct xenbus_transaction t, const char *dir, const char *node,
		  unsigned int *len);
int xenbus_scanf(struct xenbus_transaction t, const char *dir, const char *node,
		 const char *fmt, ...) __attribute__((format(scanf, 4, 5)));
unsigned int xenbus_read_unsigned(const char *dir, const char *node, unsigned int default_val);
int xenbus_printf(struct xenbus_transaction t, const char *dir, const char *node,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int xenbus_gather(struct xenbus_transaction t, const char *dir, ...);
int xenbus_transaction_start(struct xenbus_transaction *t);
int xenbus_transaction_end(struct xenbus_transaction t, int abort);
int xenbus_switch_state(struct xenbus_device *dev, enum xenbus_state new_state);
int xenbus_frontend_closed(struct xenbus_device *dev);
void xenbus_dev_fatal(struct xenbus_device *dev, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void xenbus_dev_error(struct xenbus_device *dev, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int xenbus_setup_ring(struct xenbus_device *dev, gfp_t gfp, void **vaddr, unsigned int nr_pages,
		      grant_ref_t *grefs);
void xenbus_teardown_ring(void **vaddr, unsigned int nr_pages, grant_ref_t *grefs);
int xenbus_alloc_evtchn(struct xenbus_device *dev, unsigned int *port);
int xenbus_free_evtchn(struct xenbus_device *dev, unsigned int port);

/* ---- the harness's side (shim-linux/src/shim.c) */
struct shim_callbacks {
	/* xenstore: a read answers the value's length (-errno when absent) into buf */
	int (*xs_read)(unsigned int tid, const char *path, char *buf, int buflen);
	int (*xs_write)(unsigned int tid, const char *path, const char *value);
	int (*xs_transaction_start)(void);
	int (*xs_transaction_end)(unsigned int tid, int abort); /* 0, or -EAGAIN */
	/* memory the harness can read: nr_pages contiguous zeroed pages */
	void *(*pages_alloc)(unsigned int nr_pages);
	void (*pages_free)(void *virt);
	/* grants of the harness's pages; end answers 1 when ended, 0 while mapped */
	int (*grant)(unsigned int ref, void *virt, int readonly);
	int (*end_grant)(unsigned int ref);
	void (*notify)(unsigned int port);
	/* the block layer: a bio (or a data-less request) completes */
	void (*complete)(unsigned long cookie, int status);
	void (*log)(const char *message);
};

#endif
