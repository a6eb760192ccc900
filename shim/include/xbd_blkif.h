/* xbd_blkif.h: Xen's public io/blkif.h and FreeBSD's sys/xen/blkif.h (amd64 layout). */
#ifndef XBD_BLKIF_H
#define XBD_BLKIF_H
typedef uint16_t blkif_vdev_t;
typedef uint64_t blkif_sector_t;
#define BLKIF_OP_READ 0
#define BLKIF_OP_WRITE 1
#define BLKIF_OP_WRITE_BARRIER 2
#define BLKIF_OP_FLUSH_DISKCACHE 3
#define BLKIF_OP_RESERVED_1 4
#define BLKIF_OP_DISCARD 5
#define BLKIF_OP_INDIRECT 6
#define BLKIF_MAX_SEGMENTS_PER_REQUEST 11
#define BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST 8
#define BLKIF_RSP_EOPNOTSUPP -2
#define BLKIF_RSP_ERROR -1
#define BLKIF_RSP_OKAY 0
#define VDISK_CDROM 0x1
#define VDISK_REMOVABLE 0x2
#define VDISK_READONLY 0x4
struct blkif_request_segment {
	grant_ref_t gref;
	uint8_t first_sect, last_sect;
};
struct blkif_request {
	uint8_t operation;
	uint8_t nr_segments;
	blkif_vdev_t handle;
	uint64_t id;
	blkif_sector_t sector_number;
	struct blkif_request_segment seg[BLKIF_MAX_SEGMENTS_PER_REQUEST];
};
typedef struct blkif_request blkif_request_t;
struct blkif_request_indirect {
	uint8_t operation;
	uint8_t indirect_op;
	uint16_t nr_segments;
	uint64_t id;
	blkif_sector_t sector_number;
	blkif_vdev_t handle;
	grant_ref_t indirect_grefs[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
};
typedef struct blkif_request_indirect blkif_request_indirect_t;
struct blkif_response {
	uint64_t id;
	uint8_t operation;
	int16_t status;
};
typedef struct blkif_response blkif_response_t;
DEFINE_RING_TYPES(blkif, struct blkif_request, struct blkif_response);
_Static_assert(sizeof(struct blkif_request) == 112, "blkif_request is 112 bytes on amd64");
_Static_assert(sizeof(struct blkif_response) == 16, "blkif_response is 16 bytes");
_Static_assert(offsetof(struct blkif_sring, ring) == 64, "ring header is 64 bytes");
/* FreeBSD sys/xen/blkif.h: the larger of the x86-64 and x86-32 ring sizes. */
#define BLKIF_X86_32_REQUEST_SIZE 108
#define __BLKIF_RING_ENTRIES(_sz, _ent) (__RD32(((_sz) - 64) / (_ent)))
#define BLKIF_MAX_RING_REQUESTS(_sz)                                         \
	(__BLKIF_RING_ENTRIES(_sz, sizeof(struct blkif_request)) >            \
	 __BLKIF_RING_ENTRIES(_sz, BLKIF_X86_32_REQUEST_SIZE) ?                \
	 __BLKIF_RING_ENTRIES(_sz, sizeof(struct blkif_request)) :            \
	 __BLKIF_RING_ENTRIES(_sz, BLKIF_X86_32_REQUEST_SIZE))
#endif
