/* A static inline helper that allocates, inlined into its caller at -O2: the caller of malloc is
 * the helper's line inside split_words. The words are never freed (leaks at the helper). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline char *dup_word(const char *w, size_t n) {
    char *p = malloc(n + 1); /* INLINE-MALLOC */
    if (p) {
        memcpy(p, w, n);
        p[n] = 0;
    }
    return p;
}

__attribute__((noinline)) static int split_words(const char *text, char **words, int max) {
    int n = 0;
    while (*text && n < max) {
        size_t len = strcspn(text, " ");
        words[n++] = dup_word(text, len); /* INLINE-CALL */
        text += len;
        text += strspn(text, " ");
    }
    return n;
}

int main(int argc, char **argv) {
    char *words[8];
    int n = split_words(argc > 1 ? argv[1] : "alpha beta gamma", words, 8); /* MAIN-CALL */
    for (int i = 0; i < n; i++) printf("%s\n", words[i]);
    puts("OK");
    return 0;
}
