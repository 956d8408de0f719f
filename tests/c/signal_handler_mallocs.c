/* Signal handlers that allocate, at a high rate, while two threads allocate and free.
 *
 * A SIGALRM timer (real time) and a SIGPROF timer (CPU time) fire every 50 us; their handler
 * mallocs and frees small and large blocks, reallocs, and swaps a block with the threads
 * through a shared slot, so it frees blocks the interrupted code allocated (maybe in a zone
 * whose lock that very thread holds) and leaves blocks for the threads to free. The main
 * thread and a second thread churn malloc/free/realloc of small and large blocks for SECONDS
 * (default 2). malloc is not async-signal-safe by the book, but allocators survive this in
 * practice: the program must finish. Prints the number of handler calls, then OK.
 *
 * A handler that comes less than 100 us after the previous one on its thread ended returns at
 * once, so the interrupted code always makes progress, however slow the handler is in a
 * debugging mode (with back-to-back handlers the program would never reach its end).
 *
 * With "fork" as the second argument, a third thread forks every millisecond meanwhile (its
 * child allocates, frees and exits): the fork handlers take every allocator lock while the
 * handlers of the other threads allocate and log.
 *
 * A watchdog thread (signals blocked) ends a program whose handler count or churn stops moving
 * for 3 s (a thread that waits for a lock for ever may still run handlers): "stuck after N
 * handler calls" on stderr, exit status 3, so a hang is measured (how many calls it took)
 * instead of waiting for a timeout. A child that does not exit within 3 s is reported the same
 * way ("child stuck"). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "check.h"
#include "fork_child.h"

static atomic_long calls;
/* Rounds of 1024 operations each churning thread completed (the main thread's, the other's). */
static atomic_long rounds[2];
static atomic_int stop, done;
/* Blocks passed between the handler and the threads (each frees what it takes out). */
static _Atomic(void *) shared[8];

static unsigned next_rand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static void swap_shared(unsigned r, void *p) {
    void *old = atomic_exchange(&shared[r % 8], p);
    free(old);
}

static double now(void);

static void handler(int sig) {
    (void)sig;
    int saved = errno;
    static _Thread_local double last_end;
    if (atomic_load(&stop) || now() - last_end < 100e-6) {
        errno = saved;
        return;
    }
    static _Thread_local unsigned seed = 7;
    unsigned r = next_rand(&seed);
    char *a = malloc(r % 700 + 1);
    char *b = malloc(200000 + r % 5000);
    if (a)
        a[0] = 1;
    if (b)
        b[1000] = 2;
    char *c = realloc(a, r % 3000 + 1);
    if (c)
        a = c;
    c = realloc(b, 100 + r % 100); /* LARGE to TINY */
    if (c)
        b = c;
    if (r % 2)
        swap_shared(r, malloc(r % 300 + 1));
    else
        swap_shared(r, calloc(1, 70000 + r % 1000));
    free(a);
    free(b);
    atomic_fetch_add(&calls, 1);
    last_end = now();
    errno = saved;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void churn(unsigned seed, double until, atomic_long *progress) {
    void *keep[256] = {0};
    size_t len[256] = {0};
    unsigned n = 0;
    while (!atomic_load(&stop)) {
        unsigned r = next_rand(&seed);
        unsigned i = r % 256;
        switch ((r >> 8) % 4) {
        case 0:
            free(keep[i]);
            keep[i] = NULL;
            break;
        case 1: {
            size_t sz = r % 64 == 0 ? 150000 + r % 100000 : (r >> 4) % 2000 + 1;
            void *p = realloc(keep[i], sz);
            if (p) {
                keep[i] = p;
                len[i] = sz;
                memset(p, 'r', sz < 64 ? sz : 64);
            }
            break;
        }
        case 2:
            swap_shared(r, malloc(r % 100 + 8));
            break;
        default:
            free(keep[i]);
            len[i] = (r >> 4) % 500 + 1;
            keep[i] = malloc(len[i]);
            if (keep[i])
                memset(keep[i], 'm', len[i]);
        }
        if (++n % 1024 == 0) {
            atomic_fetch_add(progress, 1);
            if (until > 0 && now() > until)
                atomic_store(&stop, 1);
        }
    }
    for (int i = 0; i < 256; i++)
        free(keep[i]);
}

static void *watchdog(void *arg) {
    (void)arg;
    /* Every 3 s: each counter must have moved since the last look (past the end, the threads
     * must have been joined). */
    long last = -1, last0 = -1, last1 = -1;
    int ticks = 0, ended = 0;
    while (!atomic_load(&done)) {
        usleep(100000);
        if (++ticks < 30)
            continue;
        ticks = 0;
        long n = atomic_load(&calls), r0 = atomic_load(&rounds[0]), r1 = atomic_load(&rounds[1]);
        int moved;
        if (atomic_load(&stop)) {
            moved = !ended;
            ended = 1;
        } else {
            moved = n != last && r0 != last0 && r1 != last1;
        }
        last = n;
        last0 = r0;
        last1 = r1;
        if (!moved && !atomic_load(&done)) {
            char buf[80];
            int len = snprintf(buf, sizeof buf, "stuck after %ld handler calls\n", n);
            write(2, buf, len);
            _exit(3);
        }
    }
    return NULL;
}

static void *worker(void *arg) {
    churn((unsigned)(uintptr_t)arg, 0, &rounds[1]);
    return NULL;
}

static atomic_long forks;

static void *forker(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
        fork_allocating_child();
        atomic_fetch_add(&forks, 1);
        usleep(1000);
    }
    return NULL;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 2;
    int forking = argc > 2 && strcmp(argv[2], "fork") == 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
    CHECK(sigaction(SIGPROF, &sa, NULL) == 0);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGALRM);
    sigaddset(&block, SIGPROF);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    pthread_t dog, th;
    CHECK(pthread_create(&dog, NULL, watchdog, NULL) == 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    CHECK(pthread_create(&th, NULL, worker, (void *)(uintptr_t)99) == 0);
    pthread_t fk;
    if (forking)
        CHECK(pthread_create(&fk, NULL, forker, NULL) == 0);
    struct itimerval it = {{0, 50}, {0, 50}};
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
    CHECK(setitimer(ITIMER_PROF, &it, NULL) == 0);
    churn(1, now() + seconds, &rounds[0]);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    setitimer(ITIMER_PROF, &off, NULL);
    pthread_join(th, NULL);
    if (forking) {
        pthread_join(fk, NULL);
        CHECK(atomic_load(&forks) > 0);
    }
    atomic_store(&done, 1);
    pthread_join(dog, NULL);
    for (int i = 0; i < 8; i++)
        free(atomic_exchange(&shared[i], NULL));
    printf("handler calls: %ld\n", atomic_load(&calls));
    printf("OK\n");
    return 0;
}
