/*
 * An LD_PRELOAD stub of the hypervisor calls Debian's oxenstored (xen-utils-4.17)
 * makes, so that it runs without Xen: serving its unix socket only.
 *
 * oxenstored imports from libxenctrl and libxenevtchn (nm -D --undefined-only
 * /usr/lib/xen-4.17/bin/oxenstored); of these it calls, when started with
 * --no-domain-init, xc_interface_open and xenevtchn_open, xenevtchn_bind_virq
 * (VIRQ_DOM_EXC) at start-up and xenevtchn_fd when it dumps its state at exit.
 * Every xenevtchn_* import is defined here, because the real ones would be handed
 * this stub's dummy handle; the other xc_* imports (domain_getinfolist and the
 * like) are only reached for introduced domains, which a socket-only daemon never
 * has.
 *
 * The event channel's file descriptor is the read end of a pipe nobody writes, so
 * oxenstored's poll never finds a pending port.  Built at test time with the
 * system's cc (tests/traces/daemon/launcher.py); never committed as a binary.
 */
#include <stdint.h>
#include <unistd.h>

typedef uint32_t evtchn_port_t;

static int stub_handle; /* the dummy handle: its address is all that is used */
static int event_pipe[2] = {-1, -1};

void *xc_interface_open(void *logger, void *dombuild_logger, unsigned open_flags)
{
    (void)logger;
    (void)dombuild_logger;
    (void)open_flags;
    return &stub_handle;
}

int xc_interface_close(void *xch)
{
    (void)xch;
    return 0;
}

void *xenevtchn_open(void *logger, unsigned open_flags)
{
    (void)logger;
    (void)open_flags;
    if (event_pipe[0] < 0 && pipe(event_pipe) != 0)
        return NULL;
    return &stub_handle;
}

void *xenevtchn_fdopen(void *logger, int fd, unsigned open_flags)
{
    (void)logger;
    (void)open_flags;
    event_pipe[0] = fd; /* live update hands its event-channel fd over */
    return &stub_handle;
}

int xenevtchn_close(void *xce)
{
    (void)xce;
    return 0;
}

int xenevtchn_fd(void *xce)
{
    (void)xce;
    return event_pipe[0];
}

int xenevtchn_notify(void *xce, evtchn_port_t port)
{
    (void)xce;
    (void)port;
    return 0;
}

int xenevtchn_bind_interdomain(void *xce, uint32_t domid, evtchn_port_t remote_port)
{
    (void)xce;
    (void)domid;
    (void)remote_port;
    return 2;
}

int xenevtchn_bind_virq(void *xce, unsigned int virq)
{
    (void)xce;
    (void)virq;
    return 1;
}

int xenevtchn_unbind(void *xce, evtchn_port_t port)
{
    (void)xce;
    (void)port;
    return 0;
}

int xenevtchn_pending(void *xce)
{
    (void)xce;
    return -1; /* never reached: nothing writes to the pipe */
}

int xenevtchn_unmask(void *xce, evtchn_port_t port)
{
    (void)xce;
    (void)port;
    return 0;
}
