/* A shared library whose constructor registers fork handlers that allocate and free, as some
 * libraries do (they rebuild state around fork). Built with -shared -fPIC and linked into
 * fork_with_allocating_handlers; its constructor runs before the allocator's own. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile int calls[3];

static void touch(int k, size_t n) {
    char *p = malloc(n);
    if (!p)
        _exit(90 + k);
    memset(p, k, n);
    char *q = malloc(n * 3 + 100000);
    if (!q)
        _exit(90 + k);
    free(p);
    free(q);
    calls[k]++;
}

static void prepare(void) { touch(0, 100); }
static void parent(void) { touch(1, 2000); }
static void child(void) { touch(2, 300); }

__attribute__((constructor)) static void register_handlers(void) {
    if (pthread_atfork(prepare, parent, child) != 0)
        _exit(89);
}

/* How many times each handler ran in this process (prepare, parent, child). */
void atfork_lib_counts(int out[3]) {
    for (int k = 0; k < 3; k++)
        out[k] = calls[k];
}
