/*
 * xen/interface/io/ring.h: FreeBSD's copy of Xen's public io/ring.h.  The shim takes the
 * real one, libxen-dev's <xen/io/ring.h> (Xen 4.17), and adds only its test hooks: the
 * rings' start index and a count of FRONT_RING_INITs.
 */
#include "xbd_shim.h"
#ifndef XBD_XEN_IO_RING_H
#define XBD_XEN_IO_RING_H

#include <xen/io/ring.h>

/* Test hook (not in ring.h): every free-running index starts here (0: Xen's macros, as they
 * are), so tests can run the indices across 2^32 early; the reference's ring_index_start. */
extern RING_IDX shim_ring_index_start;
/* FRONT_RING_INITs so far: tells the harness a ring is fresh (an address may be reused). */
extern unsigned shim_front_ring_inits;

/* Xen's FRONT_RING_INIT is FRONT_RING_ATTACH at index 0.  The hook attaches at the start
 * index instead and moves the shared ring's indices (set to 0 and 1 by Xen's
 * SHARED_RING_INIT just before) with it; at start 0 it is Xen's macro, plus the count. */
#undef FRONT_RING_INIT
#define FRONT_RING_INIT(_r, _s, __size) do {                                 \
	(_s)->req_prod = (_s)->rsp_prod = shim_ring_index_start;             \
	(_s)->req_event = (_s)->rsp_event = shim_ring_index_start + 1;       \
	FRONT_RING_ATTACH(_r, _s, shim_ring_index_start, __size);            \
	shim_front_ring_inits++;                                             \
} while (0)

#endif /* XBD_XEN_IO_RING_H */
