/* strcat writes one byte past a 16-byte block (its NUL): under guard=exact the write faults
 * inside libc; the fault report must show libc's frame, then append_suffix and main. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) void append_suffix(char *dst, const char *suffix) {
    strcat(dst, suffix);
    __asm__ volatile("" ::: "memory");
}

int main(void) {
    char *p = malloc(16);
    strcpy(p, "0123456789");
    append_suffix(p, "abcdef");
    printf("%s\n", p);
    free(p);
    return 0;
}
