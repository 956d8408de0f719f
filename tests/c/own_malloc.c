/* A program with an allocator of its own: malloc, free, calloc and realloc defined here (a bump
 * allocator over a static arena), which the C library's functions call too.
 *   own   strdup and reallocarray (which glibc implements with the program's realloc) give
 *         blocks of the arena; prints "arena: strdup yes, reallocarray yes".
 *   wrap  the four functions pass every call on to the next definition (dlsym RTLD_NEXT),
 *         then a block is freed twice; prints "wrapped".
 * usage: own_malloc own|wrap */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Alignas(16) char arena[1 << 22];
static size_t top;
static int wrapping;

static int in_arena(const void *p) {
    return (const char *)p >= arena && (const char *)p < arena + sizeof arena;
}

void *malloc(size_t n) {
    if (wrapping) {
        static void *(*next)(size_t);
        if (!next)
            next = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
        return next(n);
    }
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    if (top + n + 16 > sizeof arena)
        return NULL;
    char *p = arena + top + 16;
    memcpy(p - 16, &n, sizeof n);
    top += n + 16;
    return p;
}

void free(void *p) {
    if (wrapping) {
        static void (*next)(void *);
        if (!next)
            next = (void (*)(void *))dlsym(RTLD_NEXT, "free");
        next(p);
    }
    /* The arena never gives back. */
}

void *calloc(size_t a, size_t b) {
    if (b && a > SIZE_MAX / b)
        return NULL;
    void *p = malloc(a * b);
    if (p)
        memset(p, 0, a * b);
    return p;
}

void *realloc(void *p, size_t n) {
    if (wrapping) {
        static void *(*next)(void *, size_t);
        if (!next)
            next = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
        return next(p, n);
    }
    void *q = malloc(n);
    if (p && q) {
        size_t old;
        memcpy(&old, (char *)p - 16, sizeof old);
        memcpy(q, p, old < n ? old : n);
    }
    return q;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "wrap") == 0) {
        wrapping = 1;
        char *volatile p = malloc(24);
        free(p);
        free(p);
        printf("wrapped\n");
        return 0;
    }
    char *s = strdup("arena");
    int *v = reallocarray(NULL, 4, sizeof *v);
    v = reallocarray(v, 64, sizeof *v);
    v[63] = 1;
    printf("arena: strdup %s, reallocarray %s\n", in_arena(s) ? "yes" : "no",
           in_arena(v) ? "yes" : "no");
    return 0;
}
