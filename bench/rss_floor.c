/* rss_floor.c - preload shim (on top of glibc) that prints, at exit, the least resident memory
 * any allocator needs for a program when every block's last byte must touch a page of its own
 * (guard mode): blocks end at the same offset of their last page, so two live blocks cannot
 * share a physical page, and a live block of n written bytes holds ceil(n / page) pages (one at
 * least). It tracks the peak over time of that sum for the live blocks. Only a floor for
 * programs that write every page of their blocks (the ../shared/perf workloads do).
 * Built and run by scripts/rss-floor.sh. */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

#define HDR 16 /* keeps the 16-byte alignment of the results */
static _Atomic long cur, peak;
static long page;

static long pages(size_t n) {
    if (!page)
        page = sysconf(_SC_PAGESIZE);
    return n ? (long)((n + (size_t)page - 1) / (size_t)page) : 1;
}

static void add(long d) {
    long c = atomic_fetch_add(&cur, d) + d;
    long p = atomic_load(&peak);
    while (c > p && !atomic_compare_exchange_weak(&peak, &p, c))
        ;
}

void *malloc(size_t n) {
    size_t *p = __libc_malloc(n + HDR);
    if (!p)
        return NULL;
    p[0] = n;
    add(pages(n));
    return (char *)p + HDR;
}

void *calloc(size_t a, size_t b) {
    size_t n;
    if (__builtin_mul_overflow(a, b, &n))
        return NULL;
    size_t *p = __libc_calloc(1, n + HDR);
    if (!p)
        return NULL;
    p[0] = n;
    add(pages(n));
    return (char *)p + HDR;
}

void free(void *q) {
    if (!q)
        return;
    size_t *p = (size_t *)((char *)q - HDR);
    add(-pages(p[0]));
    __libc_free(p);
}

void *realloc(void *q, size_t n) {
    if (!q)
        return malloc(n);
    size_t *p = (size_t *)((char *)q - HDR);
    long old = pages(p[0]);
    size_t *r = __libc_realloc(p, n + HDR);
    if (!r)
        return NULL;
    r[0] = n;
    add(pages(n) - old);
    return (char *)r + HDR;
}

__attribute__((destructor)) static void report(void) {
    char b[160];
    int k = snprintf(b, sizeof b, "rss-floor: peak live pages %ld = %.1f MiB\n", peak,
                     (double)peak * (double)page / 1048576.0);
    if (k > 0)
        write(2, b, (size_t)k);
}
