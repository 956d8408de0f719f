/* A double free: the real library reports it and aborts. */
#include <stdlib.h>

__attribute__((noinline)) static void release(void *p) {
    free(p); /* FREE-LINE */
}

int main(void) {
    void *p = malloc(24); /* MALLOC-LINE */
    release(p);
    release(p);
    return 0;
}
