/* A new thread makes one block of 3000 bytes, a size nothing else here asks for, and shows the
 * heap while it holds it: its cache took one slot of that class's zone for it, no more (a
 * thread's first refill of a class is one slot). Prints the dump, then OK. */
#include <pthread.h>
#include "check.h"

void show_alloc_mem_ex(void);

static void *one_block(void *arg) {
    (void)arg;
    char *p = malloc(3000);
    CHECK(p != NULL);
    p[0] = 1;
    fflush(stdout);
    show_alloc_mem_ex();
    free(p);
    return NULL;
}

int main(void) {
    pthread_t t;
    CHECK(pthread_create(&t, NULL, one_block, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    puts("OK");
    return 0;
}
