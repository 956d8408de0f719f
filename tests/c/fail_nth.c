/* Six malloc calls, nothing else allocating in between: prints, for each, "ok" or
 * "NULL ENOMEM". Under fail=nth:3 only the third fails. */
#include <errno.h>
#include <string.h>
#include "check.h"

int main(void) {
    void *p[6];
    int err[6];
    for (int i = 0; i < 6; i++) {
        errno = 0;
        p[i] = malloc(10 + i);
        err[i] = errno;
    }
    for (int i = 0; i < 6; i++) {
        if (p[i] != NULL)
            printf("%d ok\n", i + 1);
        else
            printf("%d NULL %s\n", i + 1, err[i] == ENOMEM ? "ENOMEM" : strerror(err[i]));
        free(p[i]);
    }
    return 0;
}
