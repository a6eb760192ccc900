/* machine/intr_machdep.h: provided by the xbdspec kernel shim */
#include "xbd_shim.h"
