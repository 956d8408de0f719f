/* Coroutines (makecontext/swapcontext) that allocate, on stacks that are not their thread's:
 * one mapped with mmap and followed by an unmapped page, one malloc'ed (a LARGE block, which
 * with debugging on is followed by an inaccessible region). Each starts with a garbage frame
 * pointer that points just past the top of its stack, as a coroutine's first frame may hold:
 * a frame-pointer walk that trusts it reads there and faults. Under backtrace=N every
 * allocation walks the stack: the walk must stop short, never fault. A thread does the same.
 * Prints OK. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>
#include "check.h"

#define STACK (64 * 1024)

static ucontext_t back, co;
static long rounds;

static void work(void) {
    for (int k = 0; k < 50; k++) {
        char *p = malloc(24 + k);
        CHECK(p != NULL);
        p[0] = 1;
        char *q = realloc(p, 3000 + k);
        CHECK(q != NULL);
        char *big = calloc(1, 70000);
        CHECK(big != NULL);
        free(big);
        free(q);
        swapcontext(&co, &back);
    }
}

static void coroutine(void) {
    work();
    rounds++;
}

/* Runs `coroutine` on [stack, stack + STACK) with a frame pointer pointing at `garbage`,
 * switching back and forth until it returns. */
static void run_on(char *stack, uintptr_t garbage) {
    static char done;
    done = 0;
    CHECK(getcontext(&co) == 0);
    co.uc_stack.ss_sp = stack;
    co.uc_stack.ss_size = STACK;
    co.uc_link = &back;
    makecontext(&co, coroutine, 0);
#if defined(__x86_64__)
    co.uc_mcontext.gregs[REG_RBP] = (greg_t)garbage;
#elif defined(__aarch64__)
    co.uc_mcontext.regs[29] = garbage;
#endif
    /* uc_link brings us back here when the coroutine returns. */
    CHECK(getcontext(&back) == 0);
    if (!done) {
        long before = rounds;
        while (rounds == before) {
            CHECK(swapcontext(&back, &co) == 0);
            void *m = malloc(100); /* the main stack again, between two switches */
            CHECK(m != NULL);
            free(m);
        }
        done = 1;
    }
}

static void run_all(void) {
    long page = sysconf(_SC_PAGESIZE);
    /* An mmap'ed stack with an unmapped page right above it. */
    char *map = mmap(NULL, STACK + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    CHECK(map != MAP_FAILED);
    CHECK(munmap(map + STACK, page) == 0);
    run_on(map, (uintptr_t)(map + STACK + 64));
    CHECK(munmap(map, STACK) == 0);
    /* A malloc'ed stack: past its end, whatever the allocator keeps there. */
    char *heap = malloc(STACK);
    CHECK(heap != NULL);
    run_on(heap, (uintptr_t)(heap + STACK + 4096 + 64));
    free(heap);
}

static void *thread_main(void *arg) {
    (void)arg;
    run_all();
    return NULL;
}

int main(void) {
    run_all();
    pthread_t t;
    CHECK(pthread_create(&t, NULL, thread_main, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(rounds == 4);
    printf("OK\n");
    return 0;
}
