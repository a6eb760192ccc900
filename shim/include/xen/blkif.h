/*
 * xen/blkif.h: FreeBSD's own sys/xen/blkif.h over Xen's public headers.  What FreeBSD adds
 * to Xen's io/blkif.h: the x86-32 and x86-64 request layouts, their ring types, and
 * BLKIF_MAX_RING_REQUESTS, the most requests a ring of a given size holds in any of the
 * three ABIs (the driver sizes its command array by it).  The back end's per-ABI copy
 * helpers (blkif_get_x86_32_req, ...) and BLKIF_RING_PAGES are left out: the seed uses
 * neither.
 */
#include "xbd_shim.h"
#ifndef XBD_XEN_BLKIF_H
#define XBD_XEN_BLKIF_H

#include <xen/interface/io/ring.h>
#include <xen/interface/io/blkif.h>
#include <xen/interface/io/protocols.h>

/* Not a real protocol: ring structs with only the elements common to all protocols. */
struct blkif_common_request {
	char dummy;
};
struct blkif_common_response {
	char dummy;
};

/* i386 protocol version */
#pragma pack(push, 4)
struct blkif_x86_32_request {
	uint8_t operation;
	uint8_t nr_segments;
	blkif_vdev_t handle;
	uint64_t id;
	blkif_sector_t sector_number;
	struct blkif_request_segment seg[BLKIF_MAX_SEGMENTS_PER_REQUEST];
};
struct blkif_x86_32_response {
	uint64_t id;
	uint8_t operation;
	int16_t status;
};
typedef struct blkif_x86_32_request blkif_x86_32_request_t;
typedef struct blkif_x86_32_response blkif_x86_32_response_t;
#pragma pack(pop)

/* x86_64 protocol version */
struct blkif_x86_64_request {
	uint8_t operation;
	uint8_t nr_segments;
	blkif_vdev_t handle;
	uint64_t __attribute__((__aligned__(8))) id;
	blkif_sector_t sector_number;
	struct blkif_request_segment seg[BLKIF_MAX_SEGMENTS_PER_REQUEST];
};
struct blkif_x86_64_response {
	uint64_t __attribute__((__aligned__(8))) id;
	uint8_t operation;
	int16_t status;
};
typedef struct blkif_x86_64_request blkif_x86_64_request_t;
typedef struct blkif_x86_64_response blkif_x86_64_response_t;

DEFINE_RING_TYPES(blkif_common, struct blkif_common_request, struct blkif_common_response);
DEFINE_RING_TYPES(blkif_x86_32, struct blkif_x86_32_request, struct blkif_x86_32_response);
DEFINE_RING_TYPES(blkif_x86_64, struct blkif_x86_64_request, struct blkif_x86_64_response);

/*
 * Maximum number of requests that can be active for a given instance regardless of the
 * protocol in use, based on the ring size (FreeBSD's definition, as it is).
 */
#define BLKIF_MAX_RING_REQUESTS(_sz)                                         \
	MAX(__RING_SIZE((blkif_x86_64_sring_t *)NULL, _sz),                  \
	    MAX(__RING_SIZE((blkif_x86_32_sring_t *)NULL, _sz),              \
		__RING_SIZE((blkif_sring_t *)NULL, _sz)))

union blkif_back_rings {
	blkif_back_ring_t native;
	blkif_common_back_ring_t common;
	blkif_x86_32_back_ring_t x86_32;
	blkif_x86_64_back_ring_t x86_64;
};
typedef union blkif_back_rings blkif_back_rings_t;

enum blkif_protocol {
	BLKIF_PROTOCOL_NATIVE = 1,
	BLKIF_PROTOCOL_X86_32 = 2,
	BLKIF_PROTOCOL_X86_64 = 3,
};

#endif /* XBD_XEN_BLKIF_H */
