/*
 * queue_core.c: an independent implementation of blkfront's request-queue core
 * (freeze and thaw, the command queues, the dispatch decisions of the start-I/O
 * loop, completions), written anew from blkif.h/ring.h and docs/conformance.md.
 *
 * The file has two parts:
 *
 *  - the queue core itself (everything above QUEUE_CORE_ONLY), which knows nothing
 *    of any wire protocol: it calls five hooks, face_*(), that the program around it
 *    defines (what putting a command on the ring, publishing, completing a bio, a
 *    bus_dma mapping and a grant reservation mean);
 *
 *  - its version 1 face (the FreeBSD-internals contract, xbdspec/conformance/schema/stdio-v1.schema.json),
 *    driven by xbdspec's conformance harness over JSON lines: it starts connected (the
 *    harness drives the handshake through the model) and answers the request-path events
 *    only: strategy, backend_consume, backend_respond, interrupt, dma_callback,
 *    dma_callback_error, grants_returned.  Its observation is the request-path part of
 *    the model's state; every other field is "not checked".
 *
 * frontend.c is the core's second face, a complete blkif front end over the stdio
 * protocol version 2 (docs/stdio-v2.md): it defines QUEUE_CORE_ONLY and includes this
 * file, so both programs run the same queue core.
 *
 * Build: cc -std=c99 -O2 -o queue_core queue_core.c
 * A deliberately broken build: add -DBREAK_THAW (a command's thaw forgets to
 * decrement the freeze count); the harness must catch it.
 *
 * The input is trusted to be the harness's; still, every unknown operation or
 * event gets an error response rather than a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXC 64
#define MAXB 1024 /* the core's bio table (the v1 face uses at most V1_MAXB of it) */

enum { FREE = 0, READY = 1, BUSY = 2, NOQ = 3 };                 /* Place */
enum { ST_NONE, ST_PRIVATE, ST_PUBLISHED, ST_CONSUMED, ST_ANSWERED }; /* RingStage */
enum { K_READ, K_WRITE, K_ORDERED, K_FLUSH, K_UNSUPPORTED };     /* BioKind */
enum { B_UNSUBMITTED, B_QUEUED, B_HELD, B_DONE };                /* BioStage */
enum { RES_NONE, RES_OK, RES_EIO, RES_EOPNOTSUPP };                      /* BioResult */
enum { OP_READ = 0, OP_WRITE = 1, OP_BARRIER = 2, OP_FLUSH = 3, OP_NONE = 255 };
enum { DMA_IMMEDIATE, DMA_DEFERRED, DMA_FAILED };

/* The core's sizes, set by the face before core_reset(). */
static int ncmd = 2, nbio = 3, nslots = 2, ngrants = 3;
static uint32_t ring_base = 0xFFFFFFFEu;
/* The back end's features, as the face learnt them. */
static int barrier = 0, flush = 1;

static struct {
    int frozen, cm_shortage, gnt_shortage, wait_idle, gnt_cb;
    int place[MAXC], stage[MAXC], bio[MAXC], op[MAXC], cfrozen[MAXC], qfreeze[MAXC],
        async[MAXC], grants[MAXC], status[MAXC];
    int kind[MAXB], bstage[MAXB], result[MAXB], done[MAXB];
    uint64_t seq[MAXB]; /* the order bios were queued in (the bioq is FIFO) */
    uint32_t req_prod_pvt, req_prod, rsp_prod, rsp_cons, rsp_event;
    int irq, grants_free, connected;
} s;

/* ------------------------------------------------------------ the faces' hooks */
/* Command c goes on the ring, in slot req_prod_pvt (before the index moves). */
static void face_on_ring(int c);
/* req_prod = req_prod_pvt: the commands put on the ring are published. */
static void face_publish(void);
/* Bio b completes with result (RES_*); c is the command that carried it, or -1. */
static void face_bio_done(int b, int c, int result);
/* The bus_dma outcome of mapping command c's data (DMA_*). */
static int face_dma(int c);
/* The grant references xbd_startio reserves to send bio b. */
static int face_grants(int b);

/* ------------------------------------------------------------ freeze and thaw */
static void freeze(int *flag) { if (!*flag) { *flag = 1; s.frozen++; } }
static void thaw(int *flag) { if (*flag) { *flag = 0; if (s.frozen > 0) s.frozen--; } }
static void cm_freeze(int c) { if (!s.cfrozen[c]) { s.cfrozen[c] = 1; s.frozen++; } }
static void cm_thaw(int c)
{
    if (s.cfrozen[c]) {
        s.cfrozen[c] = 0;
#ifndef BREAK_THAW
        if (s.frozen > 0) s.frozen--;
#endif
    }
}

/* ------------------------------------------------------------ commands and bios */
static void complete(int c, int result)
{
    int b = s.bio[c];
    if (b < nbio) {
        face_bio_done(b, c, result);
        s.bstage[b] = B_DONE; s.result[b] = result; if (s.done[b] < 2) s.done[b]++;
    }
}

static void free_command(int c)
{
    s.grants_free += s.grants[c];
    s.place[c] = FREE; s.stage[c] = ST_NONE; s.bio[c] = nbio; s.op[c] = OP_NONE;
    s.qfreeze[c] = 0; s.async[c] = 0; s.grants[c] = 0; s.status[c] = 0;
    thaw(&s.cm_shortage);
}

static void on_ring(int c)
{
    face_on_ring(c);
    s.req_prod_pvt++;
    s.place[c] = BUSY; s.stage[c] = ST_PRIVATE;
}

static void publish(void)
{
    s.req_prod = s.req_prod_pvt;
    for (int c = 0; c < ncmd; c++) if (s.stage[c] == ST_PRIVATE) s.stage[c] = ST_PUBLISHED;
    face_publish();
}

static void fail_mapping(int c) { complete(c, RES_EIO); cm_thaw(c); free_command(c); }

static int some_at(int place) { for (int c = 0; c < ncmd; c++) if (s.place[c] == place) return 1; return 0; }
static int first_at(int place) { for (int c = 0; c < ncmd; c++) if (s.place[c] == place) return c; return -1; }
static int ring_full(void) { return (uint32_t)(s.req_prod_pvt - s.rsp_cons) == (uint32_t)nslots; }

/* The bio at the head of the bioq: the one queued first. */
static int head_bio(void)
{
    int head = -1;
    for (int b = 0; b < nbio; b++)
        if (s.bstage[b] == B_QUEUED && (head < 0 || s.seq[b] < s.seq[head])) head = b;
    return head;
}

/* Send command c.  A failed mapping fails its bio with EIO and frees the command;
 * the loop goes on either way (a deferred mapping freezes the queue, which ends it). */
static void send(int c)
{
    if (s.qfreeze[c]) cm_freeze(c);
    switch (face_dma(c)) {
    case DMA_IMMEDIATE: on_ring(c); break;
    case DMA_DEFERRED: s.place[c] = NOQ; s.async[c] = 1; cm_freeze(c); break;
    default: fail_mapping(c); break;
    }
}

/* ------------------------------------------------------------ the start-I/O loop */
static void startio(void)
{
    if (!s.connected) return;
    for (;;) {
        if (ring_full() || s.frozen != 0) break;
        int c = first_at(READY);
        if (c >= 0) { send(c); continue; }
        int b = head_bio();
        if (b < 0) break;
        int k = s.kind[b];
        if (k == K_UNSUPPORTED || (k == K_FLUSH && !flush && !barrier)) {
            face_bio_done(b, -1, RES_EOPNOTSUPP);
            s.bstage[b] = B_DONE; s.result[b] = RES_EOPNOTSUPP; s.done[b]++;
            continue;
        }
        c = first_at(FREE);
        if (c < 0) { freeze(&s.cm_shortage); break; }
        int need = face_grants(b);
        if (s.grants_free < need) { s.gnt_cb = 1; freeze(&s.gnt_shortage); break; }
        s.bstage[b] = B_HELD; s.bio[c] = b;
        s.op[c] = k == K_READ ? OP_READ : k == K_WRITE ? OP_WRITE
                : k == K_FLUSH ? (flush ? OP_FLUSH : OP_BARRIER) : (barrier ? OP_BARRIER : OP_WRITE);
        s.qfreeze[c] = (k == K_ORDERED && !barrier);
        s.grants[c] = need; s.grants_free -= need;
        if (s.qfreeze[c] && some_at(BUSY)) { s.place[c] = READY; freeze(&s.wait_idle); break; }
        send(c);
    }
    publish();
}

/* ------------------------------------------------------------ the interrupt */
/* Complete every command the back end answered (xbd_int's loop body). */
static void complete_answered(void)
{
    for (int c = 0; c < ncmd; c++) {
        if (s.stage[c] != ST_ANSWERED) continue;
        cm_thaw(c);
        complete(c, s.status[c] == 0 ? RES_OK : RES_EIO);
        free_command(c);
    }
}

/* The end of xbd_int: an idle queue thaws an ordered write's wait, and I/O restarts. */
static void after_interrupt(void)
{
    if (!some_at(BUSY)) thaw(&s.wait_idle);
    startio();
}

static void core_reset(int connected)
{
    memset(&s, 0, sizeof s);
    for (int c = 0; c < ncmd; c++) { s.bio[c] = nbio; s.op[c] = OP_NONE; }
    s.req_prod_pvt = s.req_prod = s.rsp_prod = s.rsp_cons = ring_base;
    s.rsp_event = ring_base + 1;
    s.grants_free = ngrants;
    s.connected = connected;
}

#ifndef QUEUE_CORE_ONLY
/* ============================================================ the version 1 face */
#define V1_MAXB 64
#define LINE 65536

static int gpr = 2;
static int dma[8], ndma, used_dma;

static int face_dma(int c) { (void)c; return used_dma < ndma ? dma[used_dma++] : (used_dma++, DMA_IMMEDIATE); }
static int face_grants(int b) { (void)b; return gpr; }
/* The mapping done, the command keeps one grant and gives the rest back. */
static void face_on_ring(int c) { s.grants_free += gpr - 1; s.grants[c] = 1; }
static void face_publish(void) {}
static void face_bio_done(int b, int c, int result) { (void)b; (void)c; (void)result; }

static void interrupt(void)
{
    complete_answered();
    s.rsp_cons = s.rsp_prod; s.rsp_event = s.rsp_prod + 1; s.irq = 0;
    after_interrupt();
}

static void respond(int c, int status)
{
    uint32_t old = s.rsp_prod, new = old + 1;
    s.rsp_prod = new; s.stage[c] = ST_ANSWERED; s.status[c] = status;
    if ((uint32_t)(new - s.rsp_event) < (uint32_t)(new - old)) s.irq = 1;
}

static void reset(void) { core_reset(1); }

/* ------------------------------------------------------------ a small JSON reader */
static const char *find_key(const char *line, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(line, pat);
    if (!p) return NULL;
    p += strlen(pat);
    while (*p == ' ' || *p == ':') p++;
    return p;
}

static long get_int(const char *line, const char *key, long dflt)
{
    const char *p = find_key(line, key);
    return p && (*p == '-' || (*p >= '0' && *p <= '9')) ? strtol(p, NULL, 10) : dflt;
}

static int get_str(const char *line, const char *key, char *out, size_t n)
{
    const char *p = find_key(line, key);
    if (!p || *p != '"') return 0;
    p++;
    size_t i = 0;
    while (*p && *p != '"' && i + 1 < n) out[i++] = *p++;
    out[i] = 0;
    return 1;
}

static int name_index(const char *name, const char *const *names, int count)
{
    for (int i = 0; i < count; i++) if (strcmp(name, names[i]) == 0) return i;
    return -1;
}

/* ------------------------------------------------------------ output */
static void put_bools(const char *name, const int *v, int n)
{
    printf("\"%s\":[", name);
    for (int i = 0; i < n; i++) printf("%s%s", i ? "," : "", v[i] ? "true" : "false");
    printf("]");
}

static void put_ints(const char *name, const int *v, int n)
{
    printf("\"%s\":[", name);
    for (int i = 0; i < n; i++) printf("%s%d", i ? "," : "", v[i]);
    printf("]");
}

static void observation(long id)
{
    printf("{\"id\":%ld,\"ok\":true,\"observation\":{\"complete\":false,\"fault\":null,\"fields\":{", id);
    printf("\"frozen\":%d,\"flag_cm_shortage\":%s,\"flag_gnt_shortage\":%s,\"flag_wait_idle\":%s,"
           "\"gnt_callback_pending\":%s,",
           s.frozen, s.cm_shortage ? "true" : "false", s.gnt_shortage ? "true" : "false",
           s.wait_idle ? "true" : "false", s.gnt_cb ? "true" : "false");
    put_ints("cmd_place", s.place, ncmd); printf(",");
    put_ints("cmd_stage", s.stage, ncmd); printf(",");
    put_ints("cmd_bio", s.bio, ncmd); printf(",");
    put_ints("cmd_op", s.op, ncmd); printf(",");
    put_bools("cmd_frozen", s.cfrozen, ncmd); printf(",");
    put_bools("cmd_qfreeze", s.qfreeze, ncmd); printf(",");
    put_bools("cmd_async", s.async, ncmd); printf(",");
    put_ints("cmd_grants", s.grants, ncmd); printf(",");
    put_ints("cmd_status", s.status, ncmd); printf(",");
    put_ints("bio_kind", s.kind, nbio); printf(",");
    put_ints("bio_stage", s.bstage, nbio); printf(",");
    put_ints("bio_result", s.result, nbio); printf(",");
    put_ints("bio_completions", s.done, nbio); printf(",");
    printf("\"req_prod_pvt\":%u,\"req_prod\":%u,\"rsp_prod\":%u,\"rsp_cons\":%u,\"rsp_event\":%u,"
           "\"irq_pending\":%s,\"grants_free\":%d",
           s.req_prod_pvt, s.req_prod, s.rsp_prod, s.rsp_cons, s.rsp_event, s.irq ? "true" : "false",
           s.grants_free);
    printf("}}}\n");
}

static void error(long id, const char *message)
{
    printf("{\"id\":%ld,\"ok\":false,\"error\":\"%s\"}\n", id, message);
}

static const char *const KINDS[] = {"READ", "WRITE", "ORDERED_WRITE", "FLUSH", "UNSUPPORTED"};
static const char *const DMAS[] = {"IMMEDIATE", "DEFERRED", "FAILED"};

static void parse_dma(const char *line)
{
    ndma = 0; used_dma = 0;
    const char *p = find_key(line, "dma");
    if (!p || *p != '[') return;
    while (*p && *p != ']' && ndma < 8) {
        const char *q = strchr(p, '"');
        if (!q || q > strchr(p, ']')) break;
        char name[32];
        size_t i = 0;
        q++;
        while (*q && *q != '"' && i + 1 < sizeof name) name[i++] = *q++;
        name[i] = 0;
        int m = name_index(name, DMAS, 3);
        dma[ndma++] = m < 0 ? DMA_IMMEDIATE : m;
        p = q + 1;
    }
}

static int apply(const char *line, const char *event)
{
    long cmd = get_int(line, "cmd", -1), bio = get_int(line, "bio", -1);
    char name[32];
    parse_dma(line);
    if (strcmp(event, "strategy") == 0) {
        if (bio < 0 || bio >= nbio || !get_str(line, "kind", name, sizeof name)) return -1;
        int k = name_index(name, KINDS, 5);
        if (k < 0) return -1;
        s.bstage[bio] = B_QUEUED; s.kind[bio] = k; s.seq[bio] = (uint64_t)bio;
        startio();
    } else if (strcmp(event, "interrupt") == 0) {
        interrupt();
    } else if (strcmp(event, "grants_returned") == 0) {
        s.gnt_cb = 0; thaw(&s.gnt_shortage); startio();
    } else if (cmd < 0 || cmd >= ncmd) {
        return -1;
    } else if (strcmp(event, "backend_consume") == 0) {
        s.stage[cmd] = ST_CONSUMED;
    } else if (strcmp(event, "backend_respond") == 0) {
        if (!get_str(line, "status", name, sizeof name)) return -1;
        respond(cmd, strcmp(name, "OKAY") == 0 ? 0 : strcmp(name, "ERROR") == 0 ? -1 : -2);
    } else if (strcmp(event, "dma_callback") == 0) {
        on_ring(cmd); publish();
    } else if (strcmp(event, "dma_callback_error") == 0) {
        fail_mapping(cmd); /* the command's freeze goes with it: restart the queue */
        startio();
    } else {
        return -2;
    }
    return 0;
}

int main(void)
{
    static char line[LINE];
    char op[32], event[64];
    setvbuf(stdout, NULL, _IOLBF, 0);
    reset();
    while (fgets(line, sizeof line, stdin)) {
        long id = get_int(line, "id", 0);
        if (!get_str(line, "op", op, sizeof op)) { error(id, "no op"); continue; }
        if (strcmp(op, "hello") == 0) {
            printf("{\"id\":%ld,\"ok\":true,\"name\":\"c-queue-core\",\"start\":\"connected\","
                   "\"features\":{\"barrier\":%s,\"flush\":%s},\"events\":[\"strategy\",\"backend_consume\","
                   "\"backend_respond\",\"interrupt\",\"dma_callback\",\"dma_callback_error\",\"grants_returned\"]}\n",
                   id, barrier ? "true" : "false", flush ? "true" : "false");
        } else if (strcmp(op, "reset") == 0) {
            ncmd = (int)get_int(line, "commands", ncmd); nbio = (int)get_int(line, "bios", nbio);
            nslots = (int)get_int(line, "ring_slots", nslots); ngrants = (int)get_int(line, "grants", ngrants);
            gpr = (int)get_int(line, "grants_per_request", gpr);
            ring_base = (uint32_t)get_int(line, "ring_base", (long)ring_base);
            if (ncmd < 1 || ncmd > MAXC || nbio < 1 || nbio > V1_MAXB) { error(id, "sizes out of range"); continue; }
            reset();
            observation(id);
        } else if (strcmp(op, "apply") == 0) {
            if (!get_str(line, "event", event, sizeof event)) { error(id, "apply without event"); continue; }
            int rc = apply(line, event);
            if (rc == -2) error(id, "unsupported event");
            else if (rc < 0) error(id, "bad parameters");
            else observation(id);
        } else if (strcmp(op, "observe") == 0) {
            observation(id);
        } else if (strcmp(op, "quit") == 0) {
            printf("{\"id\":%ld,\"ok\":true}\n", id);
            return 0;
        } else {
            error(id, "unknown op");
        }
    }
    return 0;
}
#endif /* QUEUE_CORE_ONLY */
