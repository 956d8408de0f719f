/* Requests below and at or above 1 MiB through malloc, calloc and realloc: prints one line per
 * request, "ok" or "NULL ENOMEM". Under fail=size:1m the requests of 1 MiB or more fail, a
 * failed realloc leaving its block intact. */
#include <errno.h>
#include <string.h>
#include "check.h"

static void show(const char *what, void *p) {
    int e = errno;
    printf("%s %s\n", what, p != NULL ? "ok" : e == ENOMEM ? "NULL ENOMEM" : strerror(e));
}

int main(void) {
    void *p;
    errno = 0;
    show("malloc(1m-1)", p = malloc((1 << 20) - 1));
    free(p);
    errno = 0;
    show("malloc(1m)", p = malloc(1 << 20));
    free(p);
    errno = 0;
    show("malloc(2m)", p = malloc(2 << 20));
    free(p);
    errno = 0;
    show("calloc(1,1m)", p = calloc(1, 1 << 20));
    free(p);
    errno = 0;
    show("malloc(100)", p = malloc(100));
    CHECK(p != NULL);
    memset(p, 'r', 100);
    errno = 0;
    char *r = realloc(p, 1 << 20);
    show("realloc(100->1m)", r);
    if (r != NULL) {
        p = r;
    } else {
        for (int i = 0; i < 100; i++)
            CHECK(((char *)p)[i] == 'r');
    }
    free(p);
    return 0;
}
