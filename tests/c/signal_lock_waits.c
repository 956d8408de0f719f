/* Many threads waiting for the same allocator locks while signal handlers allocate on top of
 * those waits.
 *
 * THREADS threads (default 8) allocate, resize and free blocks of 1 byte to 300 KiB in a
 * shared pool, so most frees are of another thread's block; a signal thread sends SIGUSR1 to
 * one of them every 50 us, and the handler mallocs and frees; a thread forks every
 * millisecond (the child allocates, frees and exits), so the fork handlers hold every lock
 * for a while and the other threads pile up behind them. A thread woken from a lock wait may
 * run a handler before it takes the lock, and the handler may wait for another lock: the lock
 * must not stay free with sleepers that nobody wakes.
 *
 * A watchdog thread (signals blocked) ends a program where some thread did not complete a
 * round of 256 operations for 3 s: "stuck" on stderr, exit status 3. Prints OK at the end.
 * usage: signal_lock_waits [SECONDS=2] [THREADS=8] */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "check.h"
#include "fork_child.h"

#define POOL 1024
#define MAX_THREADS 32

static _Atomic(uintptr_t) pool[POOL];
static atomic_long rounds[MAX_THREADS];
static atomic_long calls;
static atomic_int stop, done;
static int nthreads = 8;

static uint64_t next_rand(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void handler(int sig) {
    (void)sig;
    char *p = malloc(100);
    if (p) {
        memset(p, 1, 100);
        free(p);
    }
    atomic_fetch_add(&calls, 1);
}

static void *forker(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
        fork_allocating_child();
        usleep(1000);
    }
    return NULL;
}

static void *worker(void *arg) {
    uintptr_t t = (uintptr_t)arg;
    uint64_t s = 0x9e3779b97f4a7c15ULL ^ (t + 1);
    long n = 0;
    while (!atomic_load(&stop)) {
        uint64_t r = next_rand(&s);
        unsigned k = r % POOL;
        void *old = (void *)atomic_exchange(&pool[k], 0);
        if (old && r % 4 == 0) {
            void *q = realloc(old, 1 + (r >> 8) % 20000);
            CHECK(q != NULL);
            old = (void *)atomic_exchange(&pool[k], (uintptr_t)q);
        } else if (!old) {
            size_t sz = r % 16 == 0 ? 16384 + (r >> 8) % 300000 : 1 + (r >> 8) % 700;
            char *p = malloc(sz);
            CHECK(p != NULL);
            p[0] = (char)r;
            old = (void *)atomic_exchange(&pool[k], (uintptr_t)p);
        }
        free(old);
        if (++n % 256 == 0)
            atomic_fetch_add(&rounds[t], 1);
    }
    return NULL;
}

static pthread_t threads[MAX_THREADS];

static void *signaller(void *arg) {
    (void)arg;
    uint64_t s = 42;
    while (!atomic_load(&stop)) {
        pthread_kill(threads[next_rand(&s) % nthreads], SIGUSR1);
        usleep(50);
    }
    return NULL;
}

static void *watchdog(void *arg) {
    (void)arg;
    long last[MAX_THREADS];
    for (int i = 0; i < nthreads; i++)
        last[i] = -1;
    int ended = 0;
    while (!atomic_load(&done)) {
        for (int i = 0; i < 30 && !atomic_load(&done); i++)
            usleep(100000);
        if (atomic_load(&done))
            break;
        int moved = 1;
        if (atomic_load(&stop)) {
            /* Past the end, the threads have 3 s to be joined. */
            moved = !ended;
            ended = 1;
        } else {
            for (int i = 0; i < nthreads; i++) {
                long r = atomic_load(&rounds[i]);
                if (r == last[i])
                    moved = 0;
                last[i] = r;
            }
        }
        if (!moved) {
            write(2, "stuck\n", 6);
            _exit(3);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 2;
    if (argc > 2)
        nthreads = atoi(argv[2]);
    CHECK(nthreads > 0 && nthreads <= MAX_THREADS);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESTART;
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    pthread_t dog, sig;
    CHECK(pthread_create(&dog, NULL, watchdog, NULL) == 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    for (int i = 0; i < nthreads; i++)
        CHECK(pthread_create(&threads[i], NULL, worker, (void *)(uintptr_t)i) == 0);
    pthread_t fk;
    CHECK(pthread_create(&fk, NULL, forker, NULL) == 0);
    pthread_sigmask(SIG_BLOCK, &block, NULL);
    CHECK(pthread_create(&sig, NULL, signaller, NULL) == 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    double until = now() + seconds;
    while (now() < until)
        usleep(10000);
    atomic_store(&stop, 1);
    pthread_join(sig, NULL);
    pthread_join(fk, NULL);
    for (int i = 0; i < nthreads; i++)
        pthread_join(threads[i], NULL);
    atomic_store(&done, 1);
    pthread_join(dog, NULL);
    for (int k = 0; k < POOL; k++)
        free((void *)atomic_exchange(&pool[k], 0));
    printf("handler calls: %ld\n", atomic_load(&calls));
    printf("OK\n");
    return 0;
}
