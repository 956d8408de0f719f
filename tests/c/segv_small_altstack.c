/* A thread with a small alternate signal stack (8 KiB, what Rust's standard library gives each
 * thread), where our fault handler runs. argv[1] selects the fault:
 *   guard  read 1 byte past a 16-byte block (run under MALLOC_DEBUG=guard)
 *   wild   load through a pointer read from a freed block (its fill; run under MALLOC_DEBUG=1)
 * The report must be whole and the process must die of the SIGSEGV. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"

static volatile char sink;

int main(int argc, char **argv) {
    static char altstack[8192] __attribute__((aligned(16)));
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
    CHECK(sigaltstack(&ss, NULL) == 0);
    const char *m = argc > 1 ? argv[1] : "guard";
    if (!strcmp(m, "guard")) {
        char *p = announced_block(16);
        sink = ((volatile char *)p)[16];
    } else if (!strcmp(m, "wild")) {
        char **p = malloc(64);
        CHECK(p != NULL);
        p[0] = (char *)p;
        free(p);
        /* Kept as an integer, so the compiler does not warn about the (deliberate) bug. */
        volatile uintptr_t a = (uintptr_t)p;
        char *q = *(char *volatile *)a;
        sink = *q;
    }
    printf("NOT CAUGHT\n");
    return 3;
}
