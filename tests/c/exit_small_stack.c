/* exit() called where the stack is small, so the exit reports run on it:
 *   thread     a thread with a 16 KiB stack (PTHREAD_STACK_MIN if more) keeps a block in a
 *              global, drops one of 4321 bytes (a leak) and calls exit(0);
 *   coroutine  a ucontext coroutine whose 16 KiB stack lies in a heap block, 16 KiB above the
 *              block's start, where the only pointer to another block (5555 bytes) lives:
 *              the coroutine calls exit(0), and the block below its stack is no leak.
 * Prints "exiting" before exit.
 * usage: exit_small_stack thread|coroutine */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include "small_thread.h"

#define SMALL 16384

char *kept;
static ucontext_t main_ctx, co_ctx;
static char *area;

__attribute__((noinline)) static void drop(void) {
    char *volatile lost = malloc(4321);
    memset(lost, 1, 4321);
    lost = NULL;
}

/* Overwrites the stack below the caller's frame, where the allocator's frames left copies of
 * the dropped block's address. */
__attribute__((noinline)) static void scrub(void) {
    volatile char pad[6144];
    memset((char *)pad, 0, sizeof pad);
}

static void *small_thread(void *arg) {
    (void)arg;
    kept = malloc(1000);
    strcpy(kept, "kept");
    drop();
    scrub();
    printf("exiting\n");
    fflush(stdout);
    exit(0);
}

static void coroutine(void) {
    printf("exiting\n");
    fflush(stdout);
    exit(0);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "coroutine") == 0) {
        /* [0, 16K): below the stack, the only pointer to a block; [16K, 32K): the stack. */
        area = malloc(2 * SMALL);
        memset(area, 0, 2 * SMALL);
        char *only = malloc(5555);
        memset(only, 2, 5555);
        memcpy(area + SMALL - 64, &only, sizeof only);
        only = NULL;
        getcontext(&co_ctx);
        co_ctx.uc_stack.ss_sp = area + SMALL;
        co_ctx.uc_stack.ss_size = SMALL;
        co_ctx.uc_link = &main_ctx;
        makecontext(&co_ctx, coroutine, 0);
        swapcontext(&main_ctx, &co_ctx);
        return 1;
    }
    if (run_on_small_thread(small_thread, SMALL) != 0)
        return 2;
    return 1;
}
