/* N double frees (argv[1], default 3), all from the same line: with on_error=continue the
 * library reports the first in full and counts them all (ERROR SUMMARY: N error(s)). */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) static void release(void *p) {
    free(p); /* FREE-LINE */
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 3;
    for (int i = 0; i < n; i++) {
        void *p = malloc(24);
        release(p);
        release(p);
    }
    puts("OK");
    return 0;
}
