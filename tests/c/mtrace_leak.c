/* For glibc's mtrace script: a few balanced calls and one planted leak of 77 bytes. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    char *a = malloc(10);
    char *b = calloc(4, 8);
    a = realloc(a, 500);
    free(b);
    char *leak = malloc(77); /* PLANTED LEAK */
    memset(leak, 1, 77);
    free(a);
    write(1, "OK\n", 3);
    return 0;
}
