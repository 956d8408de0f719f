/* Built -O2 -fomit-frame-pointer: main -> level1 -> level2 -> level3 -> strndup (libc, built
 * without frame pointers) -> malloc. With backtrace=16 the log's record of that malloc carries
 * the whole stack: libc's frame, then level3, level2, level1, main. A second allocation comes
 * from a SIGUSR1 handler (strndup again) while raise_from -> raise: its stack goes through the
 * signal frame into raise_from and main. Prints the blocks and the functions' addresses. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *volatile in_handler;

__attribute__((noinline)) char *level3(const char *s, int n) {
    char *p = strndup(s, n);
    __asm__ volatile("" ::: "memory");
    return p;
}
__attribute__((noinline)) char *level2(const char *s, int n) {
    char *p = level3(s, n + 1);
    __asm__ volatile("" ::: "memory");
    return p;
}
__attribute__((noinline)) char *level1(const char *s, int n) {
    char *p = level2(s, n + 1);
    __asm__ volatile("" ::: "memory");
    return p;
}

static void on_usr1(int sig) {
    (void)sig;
    in_handler = strndup("from the handler", 7);
}

__attribute__((noinline)) void raise_from(void) {
    raise(SIGUSR1);
    __asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv) {
    (void)argv;
    char *p = level1("hello world", argc);
    signal(SIGUSR1, on_usr1);
    raise_from();
    printf("P %p\nH %p\n", (void *)p, (void *)in_handler);
    printf("F level3 %p\nF level2 %p\nF level1 %p\nF main %p\nF raise_from %p\n", (void *)level3,
           (void *)level2, (void *)level1, (void *)main, (void *)raise_from);
    free(p);
    free(in_handler);
    puts("OK");
    return 0;
}
