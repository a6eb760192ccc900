/* xbdspec Linux shim: everything the driver uses is in linux_shim.h (force-included). */
#include "linux_shim.h"
