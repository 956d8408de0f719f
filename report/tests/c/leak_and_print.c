/* Leaks 2 blocks of 40 bytes (unreachable at exit) and prints on stdout, whose stdio buffer is
 * a block never freed but still reachable. With argument `segv` it then dies of SIGSEGV. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) static void lose(void) {
    char *s = malloc(40); /* LEAK-LINE */
    memset(s, 'x', 40);
}

int main(int argc, char **argv) {
    lose();
    lose();
    printf("printed\n");
    fflush(stdout);
    if (argc > 1 && strcmp(argv[1], "segv") == 0) raise(SIGSEGV);
    return 0;
}
