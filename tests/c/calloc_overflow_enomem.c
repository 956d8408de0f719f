/* Requests that cannot be satisfied but are not bugs of the program: an overflowing calloc, a
 * malloc/realloc of 1 PiB (below PTRDIFF_MAX). Each returns NULL with errno ENOMEM, no report;
 * realloc leaves the block intact. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include "check.h"

int main(void) {
    volatile size_t big = (size_t)1 << 33, half = SIZE_MAX / 2 + 2;
    errno = 0;
    CHECK(calloc(big, big) == NULL);
    CHECK(errno == ENOMEM);
    errno = 0;
    CHECK(calloc(half, 2) == NULL);
    CHECK(errno == ENOMEM);
    errno = 0;
    CHECK(calloc(2, half) == NULL);
    CHECK(errno == ENOMEM);
    volatile size_t pib = (size_t)1 << 50;
    errno = 0;
    CHECK(malloc(pib) == NULL);
    CHECK(errno == ENOMEM);
    char *p = malloc(100);
    CHECK(p != NULL);
    memset(p, 'k', 100);
    errno = 0;
    CHECK(realloc(p, pib) == NULL);
    CHECK(errno == ENOMEM);
    for (int i = 0; i < 100; i++)
        CHECK(p[i] == 'k');
    free(p);
    printf("OK\n");
    return 0;
}
