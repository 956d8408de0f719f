/* Leaks 600 tokens made by strndup (libc, built without frame pointers) in next_token, called
 * by parse, called by main. Built -O2 -fomit-frame-pointer: the leak report must name
 * next_token's module as its headline, and list next_token then parse under libc's frame. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) char *next_token(const char *s, int n) {
    char *t = strndup(s, n);
    __asm__ volatile("" ::: "memory");
    return t;
}

__attribute__((noinline)) int parse(const char *line) {
    int sum = 0;
    for (int i = 0; i < 600; i++) {
        char *t = next_token(line, 4);
        sum += t[0];
        __asm__ volatile("" ::: "memory");
    }
    return sum;
}

int main(void) {
    printf("%d\n", parse("hello world") > 0);
    return 0;
}
