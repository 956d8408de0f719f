/* docs/TOUR.md: a 1-byte heap overflow: strcpy writes the terminating NUL past the block. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *copy_name(const char *name) {
    char *s = malloc(strlen(name));     /* forgot the + 1 for the NUL */
    strcpy(s, name);
    return s;
}

int main(void) {
    char *n = copy_name("0123456789abcdef");
    printf("%s\n", n);
    free(n);
    return 0;
}
