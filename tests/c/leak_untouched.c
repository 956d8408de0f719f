/* Big blocks whose pages are never touched, at exit. argv[1] threads, argv[2] MiB each:
 *   each thread allocates a block of that size and keeps it in a global (reachable);
 *   main allocates as many such blocks and drops them (leaks);
 *   a 1 MiB block in a global, written all over, holds the only pointer to a 100-byte block
 *   (reachable);
 *   an untouched block of that size in a global holds, on one page in its middle, the only
 *   pointer to a 200-byte block (reachable).
 * With argv[3] = "keep" main keeps its blocks too (nothing leaks). */
#include <pthread.h>
#include "check.h"

static size_t size;
static int keep_all;
static void *kept[64];
static void *kept_by_main[64];
static void **holder;
static void **sparse;

static void *work(void *arg) {
    kept[(long)arg] = malloc(size);
    CHECK(kept[(long)arg] != NULL);
    return NULL;
}

/* Allocates n blocks and keeps them only with "keep". */
static __attribute__((noinline)) void drop_blocks(int n) {
    for (int i = 0; i < n; i++) {
        void *volatile p = malloc(size);
        CHECK(p != NULL);
        if (keep_all)
            kept_by_main[i] = p;
        p = NULL;
    }
}

/* Clears the dead part of the stack, where drop_blocks and the allocator's frames may have left
 * the addresses of the dropped blocks. */
static __attribute__((noinline)) void scrub(void) {
    volatile char buf[65536];
    memset((char *)buf, 0, sizeof buf);
}

int main(int argc, char **argv) {
    CHECK(argc >= 3);
    int n = atoi(argv[1]);
    CHECK(n > 0 && n <= 64);
    size = (size_t)atoi(argv[2]) << 20;
    keep_all = argc > 3 && !strcmp(argv[3], "keep");
    static pthread_t t[64];
    for (long i = 0; i < n; i++)
        CHECK(pthread_create(&t[i], NULL, work, (void *)i) == 0);
    for (int i = 0; i < n; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
    /* The threads' descriptors lie in their stacks' old range, where a block may be mapped now:
     * no stale address into it. */
    memset(t, 0, sizeof t);
    drop_blocks(n);
    scrub();
    holder = malloc(1 << 20);
    CHECK(holder != NULL);
    memset(holder, 0, 1 << 20);
    holder[(1 << 20) / sizeof(void *) / 2] = malloc(100);
    sparse = malloc(size);
    CHECK(sparse != NULL);
    sparse[size / sizeof(void *) / 2] = malloc(200);
    printf("OK\n");
    return 0;
}
