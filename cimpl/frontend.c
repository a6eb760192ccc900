/*
 * frontend.c: the C queue core (queue_core.c) as a complete Xen block front end,
 * speaking the stdio protocol version 2 (docs/stdio-v2.md): the harness is its whole
 * world (xenstore, the grant table, the event channel, shared memory pages, the block
 * layer), and it sees of the front end only what it did in that world.
 *
 * What it does, as FreeBSD's blkfront does it on the wire:
 *
 *  - otherend_changed: reads the back end's state.  InitWait: allocates the ring page,
 *    SHARED_RING_INIT, grants it writable, writes ring-ref, event-channel and protocol
 *    in one transaction (retried on EAGAIN), then Initialised.  Connected: reads
 *    sectors and the features, writes Connected, starts the queue.  Closing or Closed:
 *    Closed.
 *  - submit: queues the bio on the bioq and runs the queue core's start-I/O loop
 *    (xbd_startio): while connected, not frozen and not RING_FULL (32 slots on one
 *    page), a command takes the bio, its data pages are allocated and granted (read-only
 *    for a write, writable for a read; 8 sectors a page, at most 11 pages), the request
 *    is written into its ring slot; at the end req_prod is pushed and the back end is
 *    notified exactly when RING_PUSH_REQUESTS_AND_CHECK_NOTIFY says so.  A flush is
 *    BLKIF_OP_FLUSH_DISKCACHE when the back end offers feature-flush-cache
 *    (WRITE_BARRIER when it offers only feature-barrier).
 *  - interrupt: takes every response by id (any order), completes the commands
 *    (ends the grants, copies a read's data out of its pages, frees them), sets
 *    rsp_event = rsp_cons + 1 and checks again (RING_FINAL_CHECK_FOR_RESPONSES), then
 *    restarts the queue.
 *  - shutdown: Closing.
 *
 * The queue core's freeze accounting shapes dispatch, and nothing in it waits for the
 * harness: there is no deferred bus_dma mapping here, a grant shortage thaws when
 * completions return grants (the gnttab free callback), a command shortage when a
 * command is freed.
 *
 * Hostile input: lines are read with a bound (1 MiB), every message is parsed by a
 * strict JSON reader with bounded depth and values, and every malformed harness message
 * (not JSON, too long, not the message expected, a field of the wrong type or out of
 * range) is named on stderr and the program exits with status 2.  Allocation is bounded:
 * a fixed bio table (MAXB) and, per queued write, its data (at most 11 pages).
 *
 * Build: cc -std=c99 -O2 -Wall -Wextra -o frontend frontend.c   (includes queue_core.c)
 * A deliberately broken build: -DBREAK_NOTIFY (the push never notifies the back end);
 * the harness must catch it.
 */
#define _POSIX_C_SOURCE 200809L
/* The system's headers first: a macro of theirs that names one of the core's constants
 * (<unistd.h>'s R_OK did, once) then breaks the build instead of changing its meaning. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define QUEUE_CORE_ONLY
#include "queue_core.c"

#define NAME "c-queue-core-frontend 1.0"
#define LINE_MAX_BYTES (1u << 20)   /* a line's bytes, the newline aside */
#define MAX_NODES 65536             /* JSON values in one message */
#define MAX_DEPTH 64
#define MAX_PATH_CHARS 4096         /* the schema's xenstore path */
#define MAX_PATH_BYTES (4 * MAX_PATH_CHARS)
#define MAX_PAGES (1L << 20)        /* of the shared memory file */
#define PAGE 4096
#define SECTOR 512
#define SECTORS_PER_PAGE (PAGE / SECTOR)
#define SEGS 11                     /* BLKIF_MAX_SEGMENTS_PER_REQUEST */
#define MAX_BIO_SECTORS (SEGS * SECTORS_PER_PAGE)
#define RING_SLOTS 32               /* __RD32((4096 - 64) / 112) */
#define HEADER 64
#define ENTRY 112
#define EVENT_CHANNEL "17"          /* see the report: the spec gives no way to allocate one */
#define TX_RETRIES 100

/* ============================================================ errors */
static void malformed(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: malformed harness message: ", NAME);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static void fatal(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", NAME);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

/* A call that cannot go on ends with {"type":"done","ok":false}. */
static jmp_buf call_env;
static char fail_text[512];

static void call_failed(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(fail_text, sizeof fail_text, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof fail_text) { /* cut: drop a character cut in two */
        size_t len = strlen(fail_text), start = len;
        while (start > 0 && ((unsigned char)fail_text[start - 1] & 0xC0) == 0x80) start--;
        if (start > 0) {
            unsigned lead = (unsigned char)fail_text[start - 1];
            size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
            if (len - (start - 1) < want) fail_text[start - 1] = 0;
        }
    }
    longjmp(call_env, 1);
}

/* ============================================================ the line reader */
static char line[LINE_MAX_BYTES + 1];
static size_t line_len;
static unsigned char inbuf[65536];
static size_t in_pos, in_len;
static int in_eof;

/* One line into line[] (1), or 0 at the end of input with nothing read. */
static int read_line(void)
{
    line_len = 0;
    for (;;) {
        if (in_pos == in_len) {
            if (in_eof) { line[line_len] = 0; return line_len > 0; }
            ssize_t n = read(0, inbuf, sizeof inbuf);
            if (n < 0) {
                if (errno == EINTR) continue;
                fatal("reading stdin: %s", strerror(errno));
            }
            if (n == 0) { in_eof = 1; continue; }
            in_pos = 0; in_len = (size_t)n;
        }
        unsigned char *nl = memchr(inbuf + in_pos, '\n', in_len - in_pos);
        size_t chunk = nl ? (size_t)(nl - (inbuf + in_pos)) : in_len - in_pos;
        if (chunk > LINE_MAX_BYTES - line_len) malformed("a line longer than 1 MiB");
        memcpy(line + line_len, inbuf + in_pos, chunk);
        line_len += chunk; in_pos += chunk;
        if (nl) { in_pos++; line[line_len] = 0; return 1; }
    }
}

/* ============================================================ a strict JSON reader */
enum { J_NULL, J_FALSE, J_TRUE, J_NUM, J_STR, J_ARR, J_OBJ };

struct jnode {
    int type;
    const char *str; size_t len;   /* a string (decoded) or a number (its text) */
    const char *key; size_t klen;  /* the key, for an object's member */
    int child, next;               /* first element or member; the next sibling */
};

static struct jnode nodes[MAX_NODES];
static int nnodes;
static char strbuf[LINE_MAX_BYTES + 1];
static size_t strpos;
static const char *jp, *jend;
static const char *jerr;

static int j_fail(const char *why) { if (!jerr) jerr = why; return -1; }

static void skip_ws(void) { while (jp < jend && (*jp == ' ' || *jp == '\t' || *jp == '\r' || *jp == '\n')) jp++; }

static int new_node(int type)
{
    if (nnodes == MAX_NODES) return j_fail("too many values");
    struct jnode *n = &nodes[nnodes];
    n->type = type; n->str = NULL; n->len = 0; n->key = NULL; n->klen = 0;
    n->child = n->next = -1;
    return nnodes++;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void put_utf8(uint32_t cp)
{
    char *o = strbuf + strpos;
    if (cp < 0x80) { o[0] = (char)cp; strpos += 1; }
    else if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3F)); strpos += 2; }
    else if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F)); strpos += 3;
    } else {
        o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F)); strpos += 4;
    }
}

/* The length of the valid UTF-8 sequence at p (0: not valid). */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n; uint32_t cp, min;
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; min = 0x10000; }
    else return 0;
    if ((size_t)(end - p) < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

static int parse_u4(uint32_t *out)
{
    if (jend - jp < 4) return j_fail("a short \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval((unsigned char)jp[i]);
        if (h < 0) return j_fail("a bad \\u escape");
        v = v << 4 | (uint32_t)h;
    }
    jp += 4; *out = v;
    return 0;
}

/* A string at jp (after its quote) into strbuf: its start and length. */
static int parse_string(const char **out, size_t *len)
{
    size_t start = strpos;
    for (;;) {
        if (jp >= jend) return j_fail("an unterminated string");
        unsigned char c = (unsigned char)*jp;
        if (c == '"') { jp++; break; }
        if (c < 0x20) return j_fail("a control character in a string");
        if (c == '\\') {
            jp++;
            if (jp >= jend) return j_fail("an unterminated string");
            char e = *jp++;
            switch (e) {
            case '"': strbuf[strpos++] = '"'; break;
            case '\\': strbuf[strpos++] = '\\'; break;
            case '/': strbuf[strpos++] = '/'; break;
            case 'b': strbuf[strpos++] = '\b'; break;
            case 'f': strbuf[strpos++] = '\f'; break;
            case 'n': strbuf[strpos++] = '\n'; break;
            case 'r': strbuf[strpos++] = '\r'; break;
            case 't': strbuf[strpos++] = '\t'; break;
            case 'u': {
                uint32_t cp;
                if (parse_u4(&cp) < 0) return -1;
                if (cp >= 0xDC00 && cp <= 0xDFFF) return j_fail("a lone low surrogate");
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    uint32_t lo;
                    if (jend - jp < 2 || jp[0] != '\\' || jp[1] != 'u') return j_fail("a lone high surrogate");
                    jp += 2;
                    if (parse_u4(&lo) < 0) return -1;
                    if (lo < 0xDC00 || lo > 0xDFFF) return j_fail("a lone high surrogate");
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                put_utf8(cp); /* never longer than the escape it replaces */
                break;
            }
            default: return j_fail("a bad escape");
            }
            continue;
        }
        size_t n = utf8_len((const unsigned char *)jp, (const unsigned char *)jend);
        if (n == 0) return j_fail("a string that is not UTF-8");
        memcpy(strbuf + strpos, jp, n);
        strpos += n; jp += n;
    }
    *out = strbuf + start; *len = strpos - start;
    strbuf[strpos++] = 0; /* room: the closing quote was not copied */
    return 0;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int parse_value(int depth);

static int parse_number(void)
{
    const char *start = jp;
    if (jp < jend && *jp == '-') jp++;
    if (jp >= jend || !is_digit(*jp)) return j_fail("a bad number");
    if (*jp == '0') jp++; else while (jp < jend && is_digit(*jp)) jp++;
    if (jp < jend && *jp == '.') {
        jp++;
        if (jp >= jend || !is_digit(*jp)) return j_fail("a bad number");
        while (jp < jend && is_digit(*jp)) jp++;
    }
    if (jp < jend && (*jp == 'e' || *jp == 'E')) {
        jp++;
        if (jp < jend && (*jp == '+' || *jp == '-')) jp++;
        if (jp >= jend || !is_digit(*jp)) return j_fail("a bad number");
        while (jp < jend && is_digit(*jp)) jp++;
    }
    int n = new_node(J_NUM);
    if (n < 0) return -1;
    nodes[n].str = start; nodes[n].len = (size_t)(jp - start);
    return n;
}

static int parse_literal(const char *word, int type)
{
    size_t n = strlen(word);
    if ((size_t)(jend - jp) < n || memcmp(jp, word, n) != 0) return j_fail("not JSON");
    jp += n;
    return new_node(type);
}

static int parse_value(int depth)
{
    if (depth > MAX_DEPTH) return j_fail("nested too deeply");
    skip_ws();
    if (jp >= jend) return j_fail("a value is missing");
    char c = *jp;
    if (c == '{' || c == '[') {
        int obj = c == '{';
        int n = new_node(obj ? J_OBJ : J_ARR);
        if (n < 0) return -1;
        jp++;
        skip_ws();
        char close = obj ? '}' : ']';
        if (jp < jend && *jp == close) { jp++; return n; }
        int last = -1;
        for (;;) {
            const char *key = NULL; size_t klen = 0;
            if (obj) {
                skip_ws();
                if (jp >= jend || *jp != '"') return j_fail("an object key is not a string");
                jp++;
                if (parse_string(&key, &klen) < 0) return -1;
                skip_ws();
                if (jp >= jend || *jp != ':') return j_fail("a ':' is missing");
                jp++;
            }
            int v = parse_value(depth + 1);
            if (v < 0) return -1;
            nodes[v].key = key; nodes[v].klen = klen;
            if (last < 0) nodes[n].child = v; else nodes[last].next = v;
            last = v;
            skip_ws();
            if (jp < jend && *jp == ',') { jp++; continue; }
            if (jp < jend && *jp == close) { jp++; return n; }
            return j_fail(obj ? "a ',' or '}' is missing" : "a ',' or ']' is missing");
        }
    }
    if (c == '"') {
        jp++;
        int n = new_node(J_STR);
        if (n < 0) return -1;
        const char *str; size_t len;
        if (parse_string(&str, &len) < 0) return -1;
        nodes[n].str = str; nodes[n].len = len;
        return n;
    }
    if (c == '-' || is_digit(c)) return parse_number();
    if (c == 't') return parse_literal("true", J_TRUE);
    if (c == 'f') return parse_literal("false", J_FALSE);
    if (c == 'n') return parse_literal("null", J_NULL);
    return j_fail("not JSON");
}

/* Parse line[] into nodes; the root (an object), or a malformed-message exit. */
static int parse_message(void)
{
    nnodes = 0; strpos = 0; jerr = NULL;
    jp = line; jend = line + line_len;
    int root = parse_value(0);
    if (root >= 0) {
        skip_ws();
        if (jp != jend) { jerr = "text after the JSON value"; root = -1; }
    }
    if (root < 0) malformed("%s", jerr ? jerr : "not JSON");
    if (nodes[root].type != J_OBJ) malformed("not a JSON object");
    return root;
}

/* The member `key` of object obj (the last one, as Python's json reads duplicates). */
static int jget(int obj, const char *key)
{
    int found = -1;
    size_t kl = strlen(key);
    for (int v = nodes[obj].child; v >= 0; v = nodes[v].next)
        if (nodes[v].klen == kl && memcmp(nodes[v].key, key, kl) == 0) found = v;
    return found;
}

static int jis_str(int n, const char *s) { return n >= 0 && nodes[n].type == J_STR && nodes[n].len == strlen(s) && memcmp(nodes[n].str, s, nodes[n].len) == 0; }

/* The integer n holds, within [lo, hi] (1), or 0 when it is not one. */
static int jint(int n, long long lo, long long hi, long long *out)
{
    if (n < 0 || nodes[n].type != J_NUM) return 0;
    char text[32];
    if (nodes[n].len >= sizeof text) return 0;
    memcpy(text, nodes[n].str, nodes[n].len);
    text[nodes[n].len] = 0;
    if (strpbrk(text, ".eE")) return 0;
    errno = 0;
    char *end;
    long long v = strtoll(text, &end, 10);
    if (errno || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

/* The characters (code points) of a UTF-8 text. */
static size_t chars_of(const char *p, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++) count += ((unsigned char)p[i] & 0xC0) != 0x80;
    return count;
}

/* A member that must be a string of at most max characters without NUL: its text. */
static const char *need_str(int obj, const char *key, size_t max, const char *what)
{
    int n = jget(obj, key);
    if (n < 0 || nodes[n].type != J_STR) malformed("%s: \"%s\" is not a string", what, key);
    if (chars_of(nodes[n].str, nodes[n].len) > max) malformed("%s: \"%s\" is longer than %zu characters", what, key, max);
    if (memchr(nodes[n].str, 0, nodes[n].len)) malformed("%s: \"%s\" holds a NUL", what, key);
    return nodes[n].str;
}

static long long need_int(int obj, const char *key, long long lo, long long hi, const char *what)
{
    long long v;
    if (!jint(jget(obj, key), lo, hi, &v))
        malformed("%s: \"%s\" is not an integer in [%lld, %lld]", what, key, lo, hi);
    return v;
}

/* A member that must be an unsigned 64-bit integer (the schema's u64). */
static uint64_t need_u64(int obj, const char *key, const char *what)
{
    int n = jget(obj, key);
    char text[32];
    if (n < 0 || nodes[n].type != J_NUM || nodes[n].len >= sizeof text) goto bad;
    memcpy(text, nodes[n].str, nodes[n].len);
    text[nodes[n].len] = 0;
    if (text[0] == '-' || strpbrk(text, ".eE")) goto bad;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || *end) goto bad;
    return (uint64_t)v;
bad:
    malformed("%s: \"%s\" is not an integer in [0, 2**64 - 1]", what, key);
    return 0;
}

/* Every member of obj is one of the NULL-terminated keys (additionalProperties: false). */
static void only_keys(int obj, const char *what, ...)
{
    for (int v = nodes[obj].child; v >= 0; v = nodes[v].next) {
        va_list ap;
        const char *k;
        int known = 0;
        va_start(ap, what);
        while (!known && (k = va_arg(ap, const char *)) != NULL)
            known = strlen(k) == nodes[v].klen && memcmp(k, nodes[v].key, nodes[v].klen) == 0;
        va_end(ap);
        if (!known) malformed("%s: an unknown member \"%.*s\"", what, (int)(nodes[v].klen < 64 ? nodes[v].klen : 64), nodes[v].key);
    }
}

/* Copy at most n - 1 bytes of UTF-8 text, cut at a character's start, NUL-terminated. */
static void copy_utf8(char *out, size_t n, const char *p, size_t len)
{
    if (len > n - 1) {
        len = n - 1;
        while (len > 0 && ((unsigned char)p[len] & 0xC0) == 0x80) len--;
    }
    memcpy(out, p, len);
    out[len] = 0;
}

/* ============================================================ output */
static void out_str(const char *p, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"' || c == '\\') { putchar('\\'); putchar(c); }
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

static void out_cstr(const char *p) { out_str(p, strlen(p)); }

static void out_end(void)
{
    fputs("}\n", stdout);
    if (fflush(stdout) != 0) fatal("writing stdout: %s", strerror(errno));
}

/* ============================================================ the world */
static struct {
    uint8_t *mem;
    long pages;
    char front[MAX_PATH_BYTES + 1], back[MAX_PATH_BYTES + 1];
} world;

/* Pages this front end holds (alloc_page'd and not freed): a world that hands out a
 * page twice is refused. */
static uint8_t held[MAX_PAGES / 8];

static uint8_t *page_at(long page) { return world.mem + (size_t)page * PAGE; }

/* ---- one environment request and its result */
enum { E_NONE, E_EAGAIN, E_ENOENT, E_EINVAL, E_ENOMEM, E_EACCES };
static const char *const ERRS[] = {"", "EAGAIN", "ENOENT", "EINVAL", "ENOMEM", "EACCES"};
static char err_message[256];

static void env_begin(const char *op)
{
    fputs("{\"type\":\"env\",\"op\":", stdout);
    out_cstr(op);
}

/* Send the request begun (the closing brace), read its result: E_NONE with *value the
 * value's node (-1: null), or the error. */
static int env_end(const char *op, int *value)
{
    out_end();
    if (!read_line()) fatal("the harness closed stdin while %s was waiting for its result", op);
    int root = parse_message();
    int type = jget(root, "type");
    if (!jis_str(type, "result"))
        malformed("a %s request expects a result, not %.*s", op,
                  type >= 0 && nodes[type].type == J_STR ? (int)(nodes[type].len < 64 ? nodes[type].len : 64) : 7,
                  type >= 0 && nodes[type].type == J_STR ? nodes[type].str : "no type");
    int error = jget(root, "error");
    if (error < 0) {
        only_keys(root, "a result", "type", "value", (const char *)NULL);
        int v = jget(root, "value");
        if (v < 0) malformed("%s's result has neither a value nor an error", op);
        int t = nodes[v].type;
        long long u;
        if (t == J_STR && chars_of(nodes[v].str, nodes[v].len) > 4096)
            malformed("%s's result: a string value longer than 4096 characters", op);
        if (t == J_NUM && !jint(v, 0, 0xFFFFFFFFLL, &u))
            malformed("%s's result: a number value that is not an integer in [0, 2**32 - 1]", op);
        if (t == J_ARR || t == J_OBJ) malformed("%s's result: a value that is an array or an object", op);
        *value = t == J_NULL ? -1 : v;
        return E_NONE;
    }
    only_keys(root, "a refusal", "type", "error", "message", (const char *)NULL);
    *value = -1;
    int m = jget(root, "message");
    if (m < 0 || nodes[m].type != J_STR || chars_of(nodes[m].str, nodes[m].len) > 4096)
        malformed("%s's refusal: \"message\" is not a string of at most 4096 characters", op);
    for (int e = 1; e <= E_EACCES; e++) {
        if (jis_str(error, ERRS[e])) {
            copy_utf8(err_message, sizeof err_message, nodes[m].str, nodes[m].len);
            return e;
        }
    }
    malformed("%s's refusal: \"error\" is none of EAGAIN, ENOENT, EINVAL, ENOMEM, EACCES", op);
    return E_EINVAL;
}

static void refused(const char *op, int err)
{
    call_failed("the world refused %s: %s%s%s", op, ERRS[err], err_message[0] ? ": " : "", err_message);
}

/* ---- xenstore */
static char path_buf[MAX_PATH_BYTES + 64];

static const char *path_of(const char *dir, const char *key)
{
    snprintf(path_buf, sizeof path_buf, "%s/%s", dir, key);
    if (chars_of(path_buf, strlen(path_buf)) > MAX_PATH_CHARS)
        call_failed("the path %s/%s is longer than %d characters", dir, key, MAX_PATH_CHARS);
    return path_buf;
}

/* Read a node into out (1), or 0 when it does not exist.  A value longer than the
 * buffer is cut (the front end only reads short numbers). */
static int xs_read(const char *dir, const char *key, char *out, size_t n)
{
    int v;
    env_begin("read");
    fputs(",\"path\":", stdout);
    out_cstr(path_of(dir, key));
    int err = env_end("read", &v);
    if (err == E_ENOENT) return 0;
    if (err) refused("read", err);
    if (v < 0) return 0;
    if (nodes[v].type != J_STR) malformed("read's result: the value is not a string or null");
    size_t len = nodes[v].len < n - 1 ? nodes[v].len : n - 1;
    memcpy(out, nodes[v].str, len);
    out[len] = 0;
    return 1;
}

/* A node's value as a decimal number (Linux's xenbus_scanf %d / %llu), or dflt. */
static long long xs_read_number(const char *dir, const char *key, long long dflt)
{
    char value[64];
    if (!xs_read(dir, key, value, sizeof value) || !is_digit(value[0])) return dflt;
    errno = 0;
    char *end;
    long long v = strtoll(value, &end, 10);
    return errno || *end ? dflt : v;
}

static void xs_write(const char *dir, const char *key, const char *value, long long tid)
{
    int v;
    env_begin("write");
    fputs(",\"path\":", stdout);
    out_cstr(path_of(dir, key));
    fputs(",\"value\":", stdout);
    out_cstr(value);
    printf(",\"tid\":%lld", tid);
    int err = env_end("write", &v);
    if (err == E_NONE && v >= 0) malformed("write's result: the value is not null");
    if (err) refused("write", err);
}

static long long xs_transaction_start(void)
{
    int v;
    long long tid;
    env_begin("transaction_start");
    int err = env_end("transaction_start", &v);
    if (err) refused("transaction_start", err);
    if (!jint(v, 1, 0xFFFFFFFFLL, &tid)) malformed("transaction_start's result: not a transaction id");
    return tid;
}

static int xs_transaction_end(long long tid, int abort)
{
    int v;
    env_begin("transaction_end");
    printf(",\"tid\":%lld,\"abort\":%s", tid, abort ? "true" : "false");
    int err = env_end("transaction_end", &v);
    if (err == E_NONE && v >= 0) malformed("transaction_end's result: the value is not null");
    return err;
}

/* ---- memory, grants, the event channel, the block layer */
static long alloc_page(void)
{
    int v;
    long long page;
    env_begin("alloc_page");
    int err = env_end("alloc_page", &v);
    if (err) refused("alloc_page", err);
    if (!jint(v, 0, world.pages - 1, &page))
        malformed("alloc_page's result: not a page number below %ld", world.pages);
    if (held[page / 8] & (1u << (page % 8)))
        malformed("alloc_page's result: page %lld is already this front end's", page);
    held[page / 8] |= (uint8_t)(1u << (page % 8));
    return (long)page;
}

static void free_page(long page)
{
    int v;
    held[page / 8] &= (uint8_t)~(1u << (page % 8));
    env_begin("free_page");
    printf(",\"page\":%ld", page);
    int err = env_end("free_page", &v);
    if (err == E_NONE && v >= 0) malformed("free_page's result: the value is not null");
    if (err) refused("free_page", err);
}

static uint32_t grant(long page, int readonly)
{
    int v;
    long long ref;
    env_begin("grant");
    printf(",\"page\":%ld,\"readonly\":%s", page, readonly ? "true" : "false");
    int err = env_end("grant", &v);
    if (err) refused("grant", err);
    if (!jint(v, 0, 0xFFFFFFFFLL, &ref)) malformed("grant's result: not a grant reference");
    return (uint32_t)ref;
}

static void end_grant(uint32_t ref)
{
    int v;
    env_begin("end_grant");
    printf(",\"ref\":%u", (unsigned)ref);
    int err = env_end("end_grant", &v);
    if (err == E_NONE && v >= 0) malformed("end_grant's result: the value is not null");
    if (err) refused("end_grant", err);
}

static void notify(void)
{
    int v;
    env_begin("notify");
    fputs(",\"port\":null", stdout);
    int err = env_end("notify", &v);
    if (err == E_NONE && v >= 0) malformed("notify's result: the value is not null");
    if (err) refused("notify", err);
}

static const char HEX[] = "0123456789abcdef";

static void complete_bio(uint64_t id, int ok, const uint8_t *const *pages, size_t bytes)
{
    int v;
    env_begin("complete");
    printf(",\"bio\":%llu,\"ok\":%s,\"data\":\"", (unsigned long long)id, ok ? "true" : "false");
    for (size_t i = 0; i < bytes; i++) {
        uint8_t byte = pages[i / PAGE][i % PAGE];
        putchar(HEX[byte >> 4]); putchar(HEX[byte & 15]);
    }
    putchar('"');
    int err = env_end("complete", &v);
    if (err == E_NONE && v >= 0) malformed("complete's result: the value is not null");
    if (err) refused("complete", err);
}

static void log_text(const char *text)
{
    fputs("{\"type\":\"log\",\"text\":", stdout);
    out_cstr(text);
    out_end();
}

/* ============================================================ the shared ring */
static void st32(uint8_t *p, uint32_t v)
{
    volatile uint8_t *q = p;
    q[0] = (uint8_t)v; q[1] = (uint8_t)(v >> 8); q[2] = (uint8_t)(v >> 16); q[3] = (uint8_t)(v >> 24);
}

static uint32_t ld32(const uint8_t *p)
{
    const volatile uint8_t *q = p;
    return (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
}

static void st64(uint8_t *p, uint64_t v) { st32(p, (uint32_t)v); st32(p + 4, (uint32_t)(v >> 32)); }
static uint64_t ld64(const uint8_t *p) { return (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32; }

#define mb() __sync_synchronize()

enum { REQ_PROD = 0, REQ_EVENT = 4, RSP_PROD = 8, RSP_EVENT = 12 };

/* ============================================================ the front end */
enum { XB_UNKNOWN, XB_INITIALISING, XB_INITWAIT, XB_INITIALISED, XB_CONNECTED, XB_CLOSING, XB_CLOSED };

static struct {
    int state;          /* this end's xenbus state */
    int failed;         /* a call failed: nothing more until a reset */
    int gave_up;        /* the back end broke the ring (XSA-376): it is not used again */
    long ring_page;     /* -1: none */
    uint8_t *ring;
    uint32_t ring_ref;
    uint32_t pushed;    /* req_prod as last pushed */
    long long sectors;  /* the back end's */
    uint64_t next_seq;
    /* the bios in the core's table, by slot */
    uint64_t bio_id[MAXB];
    uint64_t bio_sector[MAXB];
    int bio_sectors[MAXB];
    uint8_t *bio_data[MAXB]; /* a write's bytes, until they are in its pages */
    /* each command's data pages and their grants */
    int npages[MAXC];
    long page[MAXC][SEGS];
    uint32_t gref[MAXC][SEGS];
} fe;

static int pages_of(int sectors) { return (sectors + SECTORS_PER_PAGE - 1) / SECTORS_PER_PAGE; }

/* ---- the core's hooks */
static int face_dma(int c) { (void)c; return DMA_IMMEDIATE; }

static int face_grants(int b) { return s.kind[b] == K_FLUSH ? 0 : pages_of(fe.bio_sectors[b]); }

static void face_on_ring(int c)
{
    int b = s.bio[c];
    uint8_t req[ENTRY];
    memset(req, 0, sizeof req);
    int n = 0;
    if (s.op[c] == OP_READ || s.op[c] == OP_WRITE) {
        int sectors = fe.bio_sectors[b];
        n = pages_of(sectors);
        for (int i = 0; i < n; i++) {
            int first = i * SECTORS_PER_PAGE;
            int count = sectors - first < SECTORS_PER_PAGE ? sectors - first : SECTORS_PER_PAGE;
            long page = alloc_page();
            fe.page[c][i] = page;
            fe.npages[c] = i + 1;
            if (s.op[c] == OP_WRITE) memcpy(page_at(page), fe.bio_data[b] + (size_t)first * SECTOR, (size_t)count * SECTOR);
            fe.gref[c][i] = grant(page, s.op[c] == OP_WRITE);
            uint8_t *seg = req + 24 + 8 * i;
            st32(seg, fe.gref[c][i]);
            seg[4] = 0;                      /* first_sect */
            seg[5] = (uint8_t)(count - 1);   /* last_sect */
        }
        free(fe.bio_data[b]);
        fe.bio_data[b] = NULL;
    }
    req[0] = (uint8_t)s.op[c];
    req[1] = (uint8_t)n;
    /* handle 0 */
    st64(req + 8, (uint64_t)c);              /* id: the command's index */
    st64(req + 16, fe.bio_sector[b]);
    uint8_t *slot = fe.ring + HEADER + (size_t)(s.req_prod_pvt & (RING_SLOTS - 1)) * ENTRY;
    memcpy(slot, req, ENTRY);
}

/* RING_PUSH_REQUESTS_AND_CHECK_NOTIFY and notify_remote_via_irq. */
static void face_publish(void)
{
    uint32_t old = fe.pushed, new = s.req_prod;
    if (old == new) return;
    mb();                                    /* the requests before the index */
    st32(fe.ring + REQ_PROD, new);
    fe.pushed = new;
    mb();                                    /* the index before req_event is read */
    uint32_t event = ld32(fe.ring + REQ_EVENT);
    int needed = (uint32_t)(new - event) < (uint32_t)(new - old);
#ifdef BREAK_NOTIFY
    needed = 0;                              /* the broken build: it never notifies */
#endif
    if (needed) notify();
}

static void face_bio_done(int b, int c, int result)
{
    const uint8_t *pages[SEGS];
    size_t bytes = 0;
    int n = c >= 0 ? fe.npages[c] : 0;
    for (int i = 0; i < n; i++) {
        end_grant(fe.gref[c][i]);
        pages[i] = page_at(fe.page[c][i]);
    }
    if (c >= 0 && result == RES_OK && s.op[c] == OP_READ) bytes = (size_t)fe.bio_sectors[b] * SECTOR;
    complete_bio(fe.bio_id[b], result == RES_OK, pages, bytes);
    for (int i = 0; i < n; i++) free_page(fe.page[c][i]);
    if (c >= 0) fe.npages[c] = 0;
    free(fe.bio_data[b]);
    fe.bio_data[b] = NULL;
}

/* ---- a new device */
static void fe_reset(void)
{
    for (int b = 0; b < MAXB; b++) free(fe.bio_data[b]);
    memset(&fe, 0, sizeof fe);
    memset(held, 0, sizeof held);
    fe.state = XB_INITIALISING;
    fe.ring_page = -1;
    ncmd = RING_SLOTS;                       /* FreeBSD: max_requests = the ring's size */
    nslots = RING_SLOTS;
    nbio = MAXB;
    ngrants = world.pages - 1 < 1 << 30 ? (int)(world.pages - 1) : 1 << 30; /* a page each */
    ring_base = 0;
    barrier = flush = 0;
    core_reset(0);
}

static void switch_state(int state)
{
    char value[4];
    snprintf(value, sizeof value, "%d", state);
    xs_write(world.front, "state", value, 0);
    fe.state = state;
}

/* talk_to_backend: the ring, its grant and the keys in one transaction, Initialised. */
static void talk_to_backend(void)
{
    fe.ring_page = alloc_page();
    fe.ring = page_at(fe.ring_page);
    memset(fe.ring, 0, PAGE);                /* SHARED_RING_INIT */
    st32(fe.ring + REQ_PROD, 0); st32(fe.ring + REQ_EVENT, 1);
    st32(fe.ring + RSP_PROD, 0); st32(fe.ring + RSP_EVENT, 1);
    fe.ring_ref = grant(fe.ring_page, 0);
    char ref[16];
    snprintf(ref, sizeof ref, "%u", (unsigned)fe.ring_ref);
    for (int attempt = 0;; attempt++) {
        if (attempt == TX_RETRIES) call_failed("the handshake's transaction conflicted %d times", TX_RETRIES);
        long long tid = xs_transaction_start();
        xs_write(world.front, "ring-ref", ref, tid);
        xs_write(world.front, "event-channel", EVENT_CHANNEL, tid);
        xs_write(world.front, "protocol", "x86_64-abi", tid);
        int err = xs_transaction_end(tid, 0);
        if (err == E_NONE) break;
        if (err != E_EAGAIN) refused("transaction_end", err);
    }
    switch_state(XB_INITIALISED);
}

/* blkfront_connect */
static void blkfront_connect(void)
{
    fe.sectors = xs_read_number(world.back, "sectors", 0);
    flush = xs_read_number(world.back, "feature-flush-cache", 0) == 1;
    barrier = xs_read_number(world.back, "feature-barrier", 0) == 1;
    switch_state(XB_CONNECTED);
    s.connected = 1;
    startio();
}

static void otherend_changed(void)
{
    int be = (int)xs_read_number(world.back, "state", XB_UNKNOWN);
    switch (be) {
    case XB_INITWAIT:
        if (fe.state == XB_INITIALISING) talk_to_backend();
        break;
    case XB_CONNECTED:
        if (fe.state == XB_INITIALISED) blkfront_connect();
        break;
    case XB_CLOSING:
    case XB_CLOSED:
        if (fe.state != XB_CLOSED) {
            s.connected = 0;
            switch_state(XB_CLOSED);
        }
        break;
    default:
        break;
    }
}

/* xbd_int: every response by id, the completions, RING_FINAL_CHECK_FOR_RESPONSES. */
static void interrupt(void)
{
    if (!fe.ring || fe.gave_up) return;      /* no ring (yet), or given up */
    for (;;) {
        uint32_t rp = ld32(fe.ring + RSP_PROD);
        mb();                                /* the index before the responses */
        if ((uint32_t)(rp - s.rsp_cons) > (uint32_t)RING_SLOTS) {
            /* a hostile or broken back end (XSA-376): give the ring up, as Linux
             * disables the device, rather than read responses that are not there */
            char text[160];
            snprintf(text, sizeof text,
                     "the back end's rsp_prod %u is %u responses past rsp_cons %u (a ring holds %d): "
                     "the ring is given up", (unsigned)rp, (unsigned)(rp - s.rsp_cons),
                     (unsigned)s.rsp_cons, RING_SLOTS);
            log_text(text);
            fe.gave_up = 1;
            s.connected = 0;
            return;
        }
        while (s.rsp_cons != rp) {
            const uint8_t *rsp = fe.ring + HEADER + (size_t)(s.rsp_cons & (RING_SLOTS - 1)) * ENTRY;
            uint64_t id = ld64(rsp);
            int status = (int16_t)(uint16_t)(rsp[10] | rsp[11] << 8);
            s.rsp_cons++;
            if (id >= (uint64_t)ncmd || s.place[id] != BUSY || s.stage[id] != ST_PUBLISHED) {
                char text[128];
                snprintf(text, sizeof text, "ignored a response with id %llu, which no request in flight has",
                         (unsigned long long)id);
                log_text(text);              /* XSA-376: an id not in flight is ignored */
                continue;
            }
            s.stage[id] = ST_ANSWERED;
            s.status[id] = status;
        }
        s.rsp_prod = rp;
        complete_answered();
        st32(fe.ring + RSP_EVENT, s.rsp_cons + 1);
        mb();
        if (ld32(fe.ring + RSP_PROD) == s.rsp_cons) break;
    }
    /* the grants completions gave back: gnttab's free callback restarts the queue */
    if (s.gnt_cb) { s.gnt_cb = 0; thaw(&s.gnt_shortage); }
    after_interrupt();
}

/* ---- submit: the bio's fields, checked, into a free slot of the bioq */
static void submit(int bio)
{
    const char *what = "submit's bio";
    if (bio < 0 || nodes[bio].type != J_OBJ) malformed("submit: \"bio\" is not an object");
    only_keys(bio, what, "id", "op", "sector", "sectors", "data", (const char *)NULL);
    uint64_t id = need_u64(bio, "id", what);
    int op = jget(bio, "op");
    int kind = jis_str(op, "read") ? K_READ : jis_str(op, "write") ? K_WRITE : jis_str(op, "flush") ? K_FLUSH : -1;
    if (kind < 0) malformed("%s: \"op\" is none of read, write, flush", what);
    uint64_t sector = need_u64(bio, "sector", what);
    int sectors = (int)need_int(bio, "sectors", 0, 512, what);
    int data = jget(bio, "data");
    if (data < 0 || nodes[data].type != J_STR) malformed("%s: \"data\" is not a string", what);
    size_t hex = nodes[data].len;
    if (hex > 524288 || hex % 2) malformed("%s: \"data\" is not at most 256 KiB of hex, two digits a byte", what);
    for (size_t i = 0; i < hex; i++)
        if (hexval((unsigned char)nodes[data].str[i]) < 0) malformed("%s: \"data\" is not hex", what);

    /* what is valid but this front end cannot do: a failed call, not a crash */
    if (fe.failed) call_failed("the front end failed earlier; it needs a reset");
    if (kind != K_FLUSH) {
        const char *name = kind == K_READ ? "read" : "write";
        if (sectors < 1) call_failed("bio %llu is a %s of no sectors", (unsigned long long)id, name);
        if (sectors > MAX_BIO_SECTORS)
            call_failed("bio %llu has %d sectors; one request carries at most %d (11 segments of 8)",
                        (unsigned long long)id, sectors, MAX_BIO_SECTORS);
        if (sector > UINT64_MAX - (uint64_t)sectors)
            call_failed("bio %llu: sector %llu + %d sectors is past 2**64", (unsigned long long)id,
                        (unsigned long long)sector, sectors);
        if (pages_of(sectors) > ngrants)
            call_failed("bio %llu needs %d pages; the shared memory has %d for data", (unsigned long long)id,
                        pages_of(sectors), ngrants);
    }
    if (kind == K_WRITE && hex != (size_t)sectors * SECTOR * 2)
        call_failed("bio %llu is a write of %d sectors with %zu bytes of data", (unsigned long long)id, sectors, hex / 2);
    int b = -1;
    for (int i = 0; i < MAXB && b < 0; i++)
        if (s.bstage[i] == B_UNSUBMITTED || s.bstage[i] == B_DONE) b = i;
    if (b < 0) call_failed("bio %llu: the bioq is full (%d bios waiting or in flight)", (unsigned long long)id, MAXB);
    uint8_t *bytes = NULL;
    if (kind == K_WRITE) {
        bytes = malloc((size_t)sectors * SECTOR);
        if (!bytes) call_failed("bio %llu: out of memory for its data", (unsigned long long)id);
        for (size_t i = 0; i < hex / 2; i++)
            bytes[i] = (uint8_t)(hexval((unsigned char)nodes[data].str[2 * i]) << 4 |
                                 hexval((unsigned char)nodes[data].str[2 * i + 1]));
    }
    fe.bio_id[b] = id;
    fe.bio_sector[b] = sector;
    fe.bio_sectors[b] = kind == K_FLUSH ? 0 : sectors;
    fe.bio_data[b] = bytes;
    s.kind[b] = kind;
    s.result[b] = RES_NONE;
    s.done[b] = 0;
    s.seq[b] = fe.next_seq++;
    s.bstage[b] = B_QUEUED;
    startio();
}

static void shutdown_device(void)
{
    if (fe.state == XB_CLOSING || fe.state == XB_CLOSED) return;
    s.connected = 0;
    switch_state(XB_CLOSING);
}

/* ============================================================ the conversation */
static void done_ok(void) { fputs("{\"type\":\"done\"", stdout); out_end(); }

static void call(int root)
{
    only_keys(root, "call", "type", "call", "bio", (const char *)NULL);
    int name = jget(root, "call");
    if (name < 0 || nodes[name].type != J_STR) malformed("call: \"call\" is not a string");
    int which = jis_str(name, "otherend_changed") ? 0 : jis_str(name, "interrupt") ? 1
              : jis_str(name, "submit") ? 2 : jis_str(name, "shutdown") ? 3 : -1;
    if (which < 0) malformed("call: no entry point %.*s", (int)(nodes[name].len < 64 ? nodes[name].len : 64), nodes[name].str);
    if ((which == 2) != (jget(root, "bio") >= 0))
        malformed(which == 2 ? "call: a submit without a bio" : "call: a bio in a call that is not a submit");
    if (setjmp(call_env)) {
        fe.failed = 1;
        fputs("{\"type\":\"done\",\"ok\":false,\"error\":", stdout);
        out_cstr(fail_text);
        out_end();
        return;
    }
    if (which == 2) submit(jget(root, "bio"));  /* checks the message before it fails */
    else if (fe.failed) call_failed("the front end failed earlier; it needs a reset");
    else if (which == 0) otherend_changed();
    else if (which == 1) interrupt();
    else shutdown_device();
    done_ok();
}

static void hello(void)
{
    if (!read_line()) fatal("stdin closed before the harness's hello");
    int root = parse_message();
    if (!jis_str(jget(root, "type"), "hello")) malformed("the first message is not a hello");
    only_keys(root, "hello", "type", "protocol", "memory", "front", "back", "options", (const char *)NULL);
    if (need_int(root, "protocol", INT64_MIN, INT64_MAX, "hello") != 2)
        malformed("hello: protocol is not 2 (this front end speaks version 2)");
    int memory = jget(root, "memory");
    if (memory < 0 || nodes[memory].type != J_OBJ) malformed("hello: \"memory\" is not an object");
    only_keys(memory, "hello's memory", "path", "pages", "page_size", (const char *)NULL);
    const char *path = need_str(memory, "path", 4096, "hello's memory");
    if (!*path) malformed("hello's memory: \"path\" is empty");
    world.pages = (long)need_int(memory, "pages", 1, MAX_PAGES, "hello's memory");
    if (need_int(memory, "page_size", INT64_MIN, INT64_MAX, "hello's memory") != PAGE)
        malformed("hello's memory: \"page_size\" is not 4096");
    const char *front = need_str(root, "front", MAX_PATH_CHARS, "hello");
    const char *back = need_str(root, "back", MAX_PATH_CHARS, "hello");
    if (!*front || !*back) malformed("hello: an empty \"front\" or \"back\"");
    strcpy(world.front, front);
    strcpy(world.back, back);
    int options = jget(root, "options");
    if (options >= 0) {
        if (nodes[options].type != J_OBJ) malformed("hello: \"options\" is not an object");
        int count = 0;
        for (int o = nodes[options].child; o >= 0; o = nodes[o].next, count++)
            if (nodes[o].type != J_STR || chars_of(nodes[o].str, nodes[o].len) > 4096)
                malformed("hello: option \"%.*s\" is not a string of at most 4096 characters",
                          (int)(nodes[o].klen < 64 ? nodes[o].klen : 64), nodes[o].key);
        if (count > 64) malformed("hello: more than 64 options");
    }
    if (world.pages < 2) fatal("hello: %ld page; this front end needs a ring page and a data page", world.pages);

    int fd = open(path, O_RDWR);
    if (fd < 0) fatal("opening the shared memory %s: %s", path, strerror(errno));
    struct stat st;
    size_t size = (size_t)world.pages * PAGE;
    if (fstat(fd, &st) != 0) fatal("fstat %s: %s", path, strerror(errno));
    if (st.st_size < 0 || (unsigned long long)st.st_size < size)
        fatal("the shared memory %s has %lld bytes, not %ld pages", path, (long long)st.st_size, world.pages);
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mem == MAP_FAILED) fatal("mapping %s: %s", path, strerror(errno));
    close(fd);
    world.mem = mem;

    printf("{\"type\":\"hello\",\"protocol\":2,\"name\":\"%s\","
           "\"calls\":[\"otherend_changed\",\"interrupt\",\"submit\",\"shutdown\"],"
           "\"ops\":[\"read\",\"write\",\"flush\"]", NAME);
    out_end();
}

int main(void)
{
    static char outbuf[1 << 16];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    hello();
    fe_reset();
    while (read_line()) {
        int root = parse_message();
        int type = jget(root, "type");
        if (jis_str(type, "reset")) { only_keys(root, "reset", "type", (const char *)NULL); fe_reset(); done_ok(); }
        else if (jis_str(type, "call")) call(root);
        else if (jis_str(type, "bye")) { only_keys(root, "bye", "type", (const char *)NULL); return 0; }
        else malformed("expected reset, call or bye");
    }
    return 0;
}
