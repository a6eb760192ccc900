/*
 * xen/interface/io/blkif.h: FreeBSD's copy of Xen's public io/blkif.h; the shim takes the
 * real one, libxen-dev's <xen/io/blkif.h> (Xen 4.17), unchanged.
 */
#include "xbd_shim.h"
#ifndef XBD_XEN_IO_BLKIF_H
#define XBD_XEN_IO_BLKIF_H
#include <xen/interface/io/ring.h>
#include <xen/io/blkif.h>
#endif
