/* Shared by the test programs: CHECK aborts the test with exit status 1 and a message naming
 * the failed condition (exit, not abort, so a failure is told apart from a crash). */
#ifndef CHECK_H
#define CHECK_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

/* The guard tests' block: n bytes from malloc, every byte written, announced on stdout as
 * "block ADDR N" (the tests check that a report names this block). */
static inline char *announced_block(size_t n) {
    char *p = (char *)malloc(n);
    CHECK(p != NULL);
    memset(p, 'x', n);
    printf("block %p %zu\n", (void *)p, n);
    fflush(stdout);
    return p;
}

/* Exported by libft_malloc.so; weak so the programs also link (and report it) without it. */
extern void show_alloc_mem(void) __attribute__((weak));
extern void show_alloc_mem_ex(void) __attribute__((weak));

#endif
