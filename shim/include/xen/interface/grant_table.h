/* xen/interface/grant_table.h: Xen's public grant_table.h (grant_ref_t, and through xen.h
 * domid_t), libxen-dev's, unchanged. */
#include "xbd_shim.h"
#include <xen/grant_table.h>
