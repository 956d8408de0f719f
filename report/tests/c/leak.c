/* Known behaviour for the reader's and the launcher's tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>

__attribute__((noinline)) static char *make_name(int i) {
    char *s = malloc(13); /* LEAK-LINE */
    snprintf(s, 13, "item-%d", i);
    return s;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 3;
    for (int i = 0; i < n; i++) make_name(i);
    void *tmp = malloc(1000); /* FREED-LINE */
    free(tmp);
    fprintf(stderr, "stderr line one\nno newline at the end");
    if (argc > 2 && strcmp(argv[2], "segv") == 0) raise(SIGSEGV);
    if (argc > 2) return atoi(argv[2]);
    return 0;
}
