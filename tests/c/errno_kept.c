/* A successful allocation leaves errno as the program set it, as glibc's does (programs test
 * errno after a call that returns NULL for "none" and allocates on its way, such as getpwnam):
 * malloc, calloc, realloc (growing LARGE blocks that cannot grow in place, shrinking, moving),
 * reallocarray, the aligned forms and free, with sizes from 0 to 1.2 MiB. Prints OK. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include "check.h"

enum { N = 6000, MARK = 4242 };

#define KEEPS(call)                                                                    \
    do {                                                                               \
        errno = MARK;                                                                  \
        call;                                                                          \
        if (errno != MARK) {                                                           \
            fprintf(stderr, "%s at %d: errno %d\n", #call, i, errno);                  \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

int main(void) {
    static void *keep[N];
    for (int i = 0; i < N; i++) {
        size_t n = i % 7 == 0 ? (size_t)(i % 300) << 12 : (size_t)(i * 37 % 20000);
        void *p, *c, *a = NULL, *q, *r;
        KEEPS(p = malloc(n));
        CHECK(p != NULL);
        KEEPS(p = realloc(p, n * 2 + 100));
        CHECK(p != NULL);
        KEEPS(p = realloc(p, n / 2 + 1));
        CHECK(p != NULL);
        KEEPS(c = calloc(1, n / 2 + 1));
        CHECK(c != NULL);
        KEEPS(CHECK(posix_memalign(&a, 256, n + 1) == 0));
        KEEPS(q = aligned_alloc(64, n + 64));
        CHECK(q != NULL);
        KEEPS(r = reallocarray(NULL, n + 1, 2));
        CHECK(r != NULL);
        KEEPS(r = realloc(r, 0));
        KEEPS(free(c); free(a); free(q));
        keep[i] = p;
        if (i % 3 == 0 && i > 0) {
            KEEPS(free(keep[i / 2]));
            keep[i / 2] = NULL;
        }
    }
    for (int i = 0; i < N; i++)
        free(keep[i]);
    /* A failure still says why. */
    errno = 0;
    CHECK(malloc((size_t)-1 / 2) == NULL && errno == ENOMEM);
    puts("OK");
    return 0;
}
