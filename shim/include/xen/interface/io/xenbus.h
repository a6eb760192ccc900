/* xen/interface/io/xenbus.h: Xen's public io/xenbus.h (enum xenbus_state), libxen-dev's,
 * unchanged. */
#include "xbd_shim.h"
#include <xen/io/xenbus.h>
