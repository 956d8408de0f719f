/* A thread frees many 3000-byte (SMALL) blocks, its cache of free slots full, and exits. Its
 * cache goes back to the arenas at its exit: once malloc_trim(0) has released the empty zones,
 * no page that held one of its blocks is mapped any more (a slot left in a cache would keep its
 * zone mapped). Then the main thread allocates and frees, and show_alloc_mem shows the main
 * thread's live blocks only. Also: mallinfo2's in-use bytes follow malloc and free through the
 * caches, and blocks of the thread freed by the main thread. Prints the main thread's two live
 * blocks (3000 and 24 bytes) as "main 0x<a> 0x<b>", the dump, then OK. */
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>
#include "check.h"

#define N 2000
#define SIZE 3000

static void *blocks[N];
static void *kept[5];

static void *worker(void *arg) {
    (void)arg;
    for (int i = 0; i < N; i++) {
        blocks[i] = malloc(SIZE);
        CHECK(blocks[i] != NULL);
        memset(blocks[i], 0x5a, SIZE);
    }
    for (int i = 0; i < N; i++)
        free(blocks[i]);
    /* A few more allocated and freed: the cache of this class ends up full. */
    for (int r = 0; r < 3; r++) {
        void *p[64];
        for (int i = 0; i < 64; i++)
            p[i] = malloc(SIZE);
        for (int i = 0; i < 64; i++)
            free(p[i]);
    }
    for (int i = 0; i < 5; i++)
        kept[i] = malloc(40);
    return NULL;
}

static int mapped(void *p) {
    long page = sysconf(_SC_PAGESIZE);
    unsigned char v;
    void *a = (void *)((uintptr_t)p & ~(uintptr_t)(page - 1));
    return mincore(a, (size_t)page, &v) == 0;
}

int main(void) {
    /* In-use bytes through the caches. */
    size_t u0 = mallinfo2().uordblks;
    char *p = malloc(100);
    CHECK(p != NULL);
    CHECK(mallinfo2().uordblks == u0 + 100);
    free(p);
    CHECK(mallinfo2().uordblks == u0);

    pthread_t t;
    CHECK(pthread_create(&t, NULL, worker, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);

    /* The thread's 5 kept blocks, freed here. */
    size_t u1 = mallinfo2().uordblks;
    for (int i = 0; i < 5; i++)
        free(kept[i]);
    CHECK(mallinfo2().uordblks == u1 - 5 * 40);

    malloc_trim(0);
    for (int i = 0; i < N; i++)
        CHECK(!mapped(blocks[i]));

    /* The main thread allocates and frees blocks of every kind, keeps two. */
    for (int r = 0; r < 100; r++) {
        void *q[8];
        for (int i = 0; i < 8; i++)
            q[i] = malloc((size_t)(1 + i * 1000 + r));
        for (int i = 0; i < 8; i++)
            free(q[i]);
    }
    char *a = malloc(SIZE);
    char *b = malloc(24);
    CHECK(a != NULL && b != NULL);
    printf("main %p %p\n", (void *)a, (void *)b);
    fflush(stdout);
    show_alloc_mem();
    fflush(stdout);
    free(a);
    free(b);
    printf("OK\n");
    return 0;
}
