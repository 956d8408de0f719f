/* Reports made on a thread with a 16 KiB stack (PTHREAD_STACK_MIN if more), where the report
 * is the first to look up symbols:
 *   double    frees a block twice;
 *   waf       writes into a freed block, then frees blocks until it leaves the quarantine;
 *   wild      reads a pointer out of a block it never wrote (the alloc fill) and follows it;
 *   dump      calls show_alloc_mem_ex (found with dlsym, so that the program also runs
 *             without the library) and prints "dumped" after it.
 * A second argument sets another stack size (bytes), for comparison.
 * usage: report_small_stack double|waf|wild|dump [STACK] */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "small_thread.h"

#define SMALL 16384

static const char *mode;

__attribute__((noinline)) static void double_free(void) {
    char *volatile p = malloc(24);
    free(p);
    free(p);
}

__attribute__((noinline)) static void write_after_free(void) {
    char *volatile p = malloc(40);
    free(p);
    ((volatile char *)p)[3] = 7;
    for (int i = 0; i < 200000; i++) {
        char *volatile q = malloc(40);
        free(q);
    }
}

__attribute__((noinline)) static void wild(void) {
    char **volatile table = malloc(64);
    char *q = table[2];
    printf("%d\n", *q);
}

static void *small_thread(void *arg) {
    (void)arg;
    if (strcmp(mode, "double") == 0)
        double_free();
    else if (strcmp(mode, "waf") == 0)
        write_after_free();
    else if (strcmp(mode, "wild") == 0)
        wild();
    else if (strcmp(mode, "dump") == 0) {
        void (*dump)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "show_alloc_mem_ex");
        char *volatile p = malloc(77);
        if (dump)
            dump();
        free(p);
        printf("dumped\n");
    }
    fflush(stdout);
    return NULL;
}

int main(int argc, char **argv) {
    mode = argc > 1 ? argv[1] : "";
    size_t size = argc > 2 ? strtoul(argv[2], NULL, 10) : SMALL;
    return run_on_small_thread(small_thread, size);
}
