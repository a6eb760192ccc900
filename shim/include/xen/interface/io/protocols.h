/* xen/interface/io/protocols.h: Xen's public io/protocols.h, libxen-dev's, unchanged. */
#include "xbd_shim.h"
#include <xen/io/protocols.h>
