/* A stand-in for libft_malloc.so in the launcher's tests: forwards to glibc (__libc_malloc &
 * co.) and writes the log of docs/LOGFORMAT.md for malloc, calloc, realloc and free, with
 * MALLOC_DEBUG=...,log=PATH (%p = pid). With FAKE_REPORT=1 it also prints one ERROR report in
 * the library's style (module+offset of the caller) on stderr. With FT_MALLOC_ANNOUNCE set it
 * announces itself as the library does (ft_format::announce): `start` at load, `exit` at exit
 * with its error count and, as leak totals, the blocks still live (FAKE_REACHABLE=B/N adds a
 * still-reachable figure). Single-threaded programs only. */
#define _GNU_SOURCE
#include <link.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <malloc.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

static int fd = -2, busy, reported;
static unsigned long live_bytes, live_blocks;
static struct { void *p; size_t n; } live[4096];
static unsigned long seq, t0;
static unsigned long exe_base;
static char exe[4096];

static unsigned long now(void) {
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long)ts.tv_sec * 1000000000ul + (unsigned long)ts.tv_nsec;
}
static char *dec(char *o, unsigned long v) {
    char b[24]; int n = 0; do { b[n++] = '0' + v % 10; v /= 10; } while (v);
    while (n) *o++ = b[--n]; return o;
}
static char *hex(char *o, unsigned long v) {
    char b[24]; int n = 0; *o++ = '0'; *o++ = 'x';
    do { b[n++] = "0123456789abcdef"[v & 15]; v >>= 4; } while (v);
    while (n) *o++ = b[--n]; return o;
}
static char *str(char *o, const char *s) { while (*s) *o++ = *s++; return o; }
static int first_obj(struct dl_phdr_info *i, size_t sz, void *d) {
    (void)sz; (void)d; exe_base = i->dlpi_addr; return 1;
}
static void open_log(void) {
    fd = -1;
    const char *d = getenv("MALLOC_DEBUG");
    if (!d) return;
    const char *l = strstr(d, "log=");
    if (!l) return;
    l += 4;
    char path[4096], *o = path;
    while (*l && *l != ',' && o < path + 4000) {
        if (l[0] == '%' && l[1] == 'p') { o = dec(o, (unsigned long)getpid()); l += 2; }
        else *o++ = *l++;
    }
    *o = 0;
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return;
    t0 = now();
    char b[8192]; o = b;
    o = str(o, "# ft_malloc log v1\n# program "); o = str(o, exe);
    o = str(o, "\n# pid "); o = dec(o, (unsigned long)getpid());
    o = str(o, "\n# ppid "); o = dec(o, (unsigned long)getppid());
    o = str(o, "\n# page_size 4096\n# start_ns "); o = dec(o, t0);
    o = str(o, "\n# debug "); o = str(o, d);
    o = str(o, "\nM "); o = hex(o, exe_base); o = str(o, " "); o = str(o, exe); o = str(o, "\n");
    (void)!write(fd, b, (size_t)(o - b));
}
static void track(void *in, void *out, size_t size) {
    if (in) for (int i = 0; i < 4096; i++) if (live[i].p == in) {
        live_bytes -= live[i].n; live_blocks--; live[i].p = 0; break;
    }
    if (out) for (int i = 0; i < 4096; i++) if (!live[i].p) {
        live[i].p = out; live[i].n = size; live_bytes += size; live_blocks++; break;
    }
}
static void announce(const char *b, size_t n) {
    const char *a = getenv("FT_MALLOC_ANNOUNCE");
    if (!a) return;
    int f = open(a, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (f < 0) return;
    (void)!write(f, b, n);
    close(f);
}
__attribute__((constructor)) static void fake_start(void) {
    char b[9000], *o = b, self[4096], parent[4096], link[64];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = 0;
    o = str(link, "/proc/"); o = dec(o, (unsigned long)getppid()); o = str(o, "/exe"); *o = 0;
    n = readlink(link, parent, sizeof parent - 1);
    parent[n > 0 ? n : 0] = 0;
    o = b;
    o = str(o, "start pid="); o = dec(o, (unsigned long)getpid());
    o = str(o, " ppid="); o = dec(o, (unsigned long)getppid());
    o = str(o, getenv("MALLOC_DEBUG") ? " debug=1 exe=" : " debug=0 exe=");
    for (char *c = self; *c; c++) { if (*c == ' ') o = str(o, "\\x20"); else *o++ = *c; }
    o = str(o, " parent=");
    for (char *c = parent; *c; c++) { if (*c == ' ') o = str(o, "\\x20"); else *o++ = *c; }
    *o++ = '\n';
    announce(b, (size_t)(o - b));
}
__attribute__((destructor)) static void fake_exit(void) {
    char b[256], *o = b;
    const char *r = getenv("FAKE_REACHABLE");
    o = str(o, "exit pid="); o = dec(o, (unsigned long)getpid());
    o = str(o, " errors="); o = dec(o, (unsigned long)reported);
    o = str(o, " leak_check=on leaked="); o = dec(o, live_bytes); *o++ = '/'; o = dec(o, live_blocks);
    o = str(o, " reachable="); o = str(o, r ? r : "0/0");
    *o++ = '\n';
    announce(b, (size_t)(o - b));
}
static void rec(const char *op, void *in, void *out, size_t size, void *caller) {
    if (busy) return;
    track(in, out, size);
    busy = 1;
    if (!exe[0]) {
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        exe[n > 0 ? n : 0] = 0;
        dl_iterate_phdr(first_obj, 0);
    }
    if (fd == -2) open_log();
    if (!reported && getenv("FAKE_REPORT") && (unsigned long)caller - exe_base < 0x100000) {
        char b[8192], *o = b;
        reported = 1;
        o = str(o, "ft_malloc["); o = dec(o, (unsigned long)getpid()); o = str(o, "]: ERROR: test report\n");
        o = str(o, "ft_malloc["); o = dec(o, (unsigned long)getpid());
        o = str(o, "]:   allocated by malloc() at #1 from "); o = str(o, exe); *o++ = '+';
        o = hex(o, (unsigned long)caller - exe_base); *o++ = '\n';
        (void)!write(2, b, (size_t)(o - b));
    }
    if (fd >= 0) {
        char b[256], *o = b;
        o = str(o, "E "); o = dec(o, ++seq); *o++ = ' '; o = dec(o, now() - t0); *o++ = ' ';
        o = dec(o, (unsigned long)gettid()); *o++ = ' '; o = str(o, op); *o++ = ' ';
        o = hex(o, (unsigned long)in); *o++ = ' '; o = hex(o, (unsigned long)out); *o++ = ' ';
        o = dec(o, size); o = str(o, " 0 "); o = hex(o, (unsigned long)caller); *o++ = '\n';
        (void)!write(fd, b, (size_t)(o - b));
    }
    busy = 0;
}
void *malloc(size_t n) {
    void *p = __libc_malloc(n); rec("malloc", 0, p, n, __builtin_return_address(0)); return p;
}
void *calloc(size_t a, size_t b) {
    void *p = __libc_calloc(a, b); rec("calloc", 0, p, a * b, __builtin_return_address(0)); return p;
}
void *realloc(void *q, size_t n) {
    void *p = __libc_realloc(q, n); rec("realloc", q, p, n, __builtin_return_address(0)); return p;
}
void free(void *p) {
    if (!p) return;
    size_t n = malloc_usable_size(p);
    rec("free", p, 0, n ? n : 1, __builtin_return_address(0));
    __libc_free(p);
}
