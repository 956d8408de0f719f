/* Bytes written up to malloc_usable_size survive realloc, as with glibc: an array filled to
 * its usable size and then grown (systemd's greedy arrays), for blocks of every kind (TINY,
 * SMALL, LARGE, aligned), grown in place and moved, shrunk and grown again. Prints OK. */
#include <malloc.h>
#include <stdint.h>
#include "check.h"

static unsigned char tag(size_t i, unsigned seed) {
    return (unsigned char)(i * 31u + seed);
}

static void fill(unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        p[i] = tag(i, seed);
}

static void expect(const unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != tag(i, seed)) {
            fprintf(stderr, "byte %zu of %zu lost\n", i, n);
            exit(1);
        }
}

int main(void) {
    unsigned seed = 1;
    for (size_t n = 1; n < (1u << 20); n = n * 3 / 2 + 1, seed++) {
        /* Filled to its usable size, then grown to several times that. */
        unsigned char *p = malloc(n);
        CHECK(p != NULL);
        size_t u = malloc_usable_size(p);
        CHECK(u >= n);
        fill(p, u, seed);
        p = realloc(p, u * 3 + 100);
        CHECK(p != NULL);
        expect(p, u, seed);
        /* Grown by a little (in place when it fits), filled again, shrunk and grown. */
        u = malloc_usable_size(p);
        fill(p, u, seed + 7);
        p = realloc(p, u + 1);
        CHECK(p != NULL);
        expect(p, u, seed + 7);
        p = realloc(p, n / 2 + 1);
        CHECK(p != NULL);
        expect(p, n / 2 + 1, seed + 7);
        free(p);

        /* An aligned block. */
        void *a = NULL;
        CHECK(posix_memalign(&a, 64, n) == 0);
        u = malloc_usable_size(a);
        fill(a, u, seed + 3);
        a = realloc(a, u * 2 + 1);
        CHECK(a != NULL);
        expect(a, u, seed + 3);
        free(a);
    }

    /* A greedy array: grown only once its usable size is full. */
    size_t len = 0;
    uint32_t *arr = NULL;
    for (uint32_t v = 0; v < 300000; v++) {
        if ((len + 1) * sizeof *arr > malloc_usable_size(arr)) {
            arr = realloc(arr, (len + 1) * sizeof *arr * 2);
            CHECK(arr != NULL);
        }
        arr[len++] = v * 2654435761u;
    }
    for (size_t i = 0; i < len; i++)
        CHECK(arr[i] == (uint32_t)i * 2654435761u);
    free(arr);
    puts("OK");
    return 0;
}
