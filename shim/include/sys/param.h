/* sys/param.h: provided by the xbdspec kernel shim */
#include "xbd_shim.h"
