/* xen/interface/io/ring.h: provided by the xbdspec kernel shim */
#include "xbd_shim.h"
