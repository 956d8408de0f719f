/* Double frees of blocks sitting in a thread's cache of free slots (debugging off): a TINY one
 * freed twice by its thread, then a SMALL one freed by the main thread and again by another
 * thread, then a block of the main thread's arena freed by another thread (which holds it
 * apart, for its own arena) twice, and again by the main thread. Each second free is refused:
 * the next allocations of those sizes are distinct blocks (a free taken twice would hand one
 * block out twice). Prints "continued" then OK. */
#include <pthread.h>
#include "check.h"

static char *volatile small, *volatile other;

static void *again(void *arg) {
    (void)arg;
    free(small);
    return NULL;
}

/* Allocates first (the thread's own arena), then frees the main thread's block twice. */
static void *twice(void *arg) {
    (void)arg;
    char *mine = malloc(200);
    CHECK(mine != NULL);
    free(other);
    free(other);
    free(mine);
    return NULL;
}

int main(void) {
    char *volatile p = malloc(24);
    CHECK(p != NULL);
    free(p);
    free(p);
    char *a = malloc(24), *b = malloc(24);
    CHECK(a != NULL && b != NULL && a != b);
    small = malloc(3000);
    CHECK(small != NULL);
    free(small);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, again, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    char *c = malloc(3000), *d = malloc(3000);
    CHECK(c != NULL && d != NULL && c != d);
    memset(c, 1, 3000);
    memset(d, 2, 3000);
    CHECK(c[2999] == 1);
    other = malloc(200);
    CHECK(other != NULL);
    CHECK(pthread_create(&t, NULL, twice, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    free(other);
    char *e = malloc(200), *f = malloc(200);
    CHECK(e != NULL && f != NULL && e != f);
    memset(e, 3, 200);
    memset(f, 4, 200);
    CHECK(e[199] == 3);
    printf("continued\n");
    free(a);
    free(b);
    free(c);
    free(d);
    free(e);
    free(f);
    printf("OK\n");
    return 0;
}
