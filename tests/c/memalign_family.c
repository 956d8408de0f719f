/* posix_memalign, aligned_alloc, memalign, valloc and pvalloc over alignments 1 .. 64 KiB and
 * sizes of every class: alignment honoured, memory writable and not shared between blocks;
 * bad alignments rejected with EINVAL. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include "check.h"

#define MAXB 4096

static unsigned char *blk[MAXB];
static size_t blen[MAXB];
static int nb;

static void keep(void *p, size_t n) {
    CHECK(nb < MAXB);
    memset(p, nb & 0xff, n);
    blk[nb] = p;
    blen[nb] = n;
    nb++;
}

static void verify_and_free_all(void) {
    for (int i = 0; i < nb; i++) {
        for (size_t j = 0; j < blen[i]; j++)
            CHECK(blk[i][j] == (i & 0xff));
        free(blk[i]);
    }
    nb = 0;
}

int main(void) {
    static const size_t sizes[] = {0, 1, 17, 100, 512, 1000, 5000, 32768, 40000, 300000};
    const size_t ns = sizeof sizes / sizeof sizes[0];
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);

    for (size_t align = 1; align <= 65536; align *= 2) {
        for (size_t k = 0; k < ns; k++) {
            size_t n = sizes[k];
            void *p = (void *)1;
            int rc = posix_memalign(&p, align, n);
            if (align % sizeof(void *) == 0) {
                CHECK(rc == 0);
                CHECK(p != NULL && (uintptr_t)p % align == 0 && (uintptr_t)p % 16 == 0);
                CHECK(malloc_usable_size(p) >= n);
                keep(p, n);
            } else {
                CHECK(rc == EINVAL);
            }

            p = aligned_alloc(align, n);
            CHECK(p != NULL && (uintptr_t)p % align == 0 && (uintptr_t)p % 16 == 0);
            CHECK(malloc_usable_size(p) >= n);
            keep(p, n);

            p = memalign(align, n);
            CHECK(p != NULL && (uintptr_t)p % align == 0 && (uintptr_t)p % 16 == 0);
            CHECK(malloc_usable_size(p) >= n);
            keep(p, n);
        }
        verify_and_free_all();
    }

    /* Alignments that are not powers of two, or not multiples of sizeof(void *). */
    static const size_t bad[] = {0, 3, 4, 12, 24, 48, 100, 4097, 65535};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        void *p = NULL;
        CHECK(posix_memalign(&p, bad[k], 64) == EINVAL);
    }
    static const size_t bad_aa[] = {3, 24, 100, 4097};
    for (size_t k = 0; k < sizeof bad_aa / sizeof bad_aa[0]; k++) {
        errno = 0;
        CHECK(aligned_alloc(bad_aa[k], 64) == NULL);
        CHECK(errno == EINVAL);
    }
    /* memalign rounds a non-power-of-two alignment up to the next power of two. */
    void *m = memalign(24, 100);
    CHECK(m != NULL && (uintptr_t)m % 32 == 0);
    free(m);
    m = memalign(3000, 10);
    CHECK(m != NULL && (uintptr_t)m % 4096 == 0);
    free(m);

    /* valloc: page-aligned; pvalloc: page-aligned with the size rounded up to a page. */
    for (size_t k = 0; k < ns; k++) {
        size_t n = sizes[k];
        void *p = valloc(n);
        CHECK(p != NULL && (uintptr_t)p % page == 0);
        CHECK(malloc_usable_size(p) >= n);
        keep(p, n);
        p = pvalloc(n);
        size_t rounded = (n + page - 1) / page * page;
        CHECK(p != NULL && (uintptr_t)p % page == 0);
        CHECK(malloc_usable_size(p) >= rounded);
        keep(p, rounded);
    }
    verify_and_free_all();

    /* Many small blocks with a large alignment, interleaved with plain ones. */
    for (int i = 0; i < 200; i++) {
        void *a = memalign(4096, 16);
        CHECK(a != NULL && (uintptr_t)a % 4096 == 0);
        keep(a, 16);
        void *b = malloc(24);
        CHECK(b != NULL && (uintptr_t)b % 16 == 0);
        keep(b, 24);
    }
    verify_and_free_all();

    /* An aligned block can be realloc'ed and freed like any other. */
    unsigned char *q = memalign(256, 1000);
    CHECK(q != NULL);
    memset(q, 0x77, 1000);
    q = realloc(q, 100000);
    CHECK(q != NULL);
    for (int i = 0; i < 1000; i++)
        CHECK(q[i] == 0x77);
    free(q);
    printf("OK\n");
    return 0;
}
