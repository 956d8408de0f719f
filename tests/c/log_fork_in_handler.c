/* Forks from a signal handler that interrupts threads writing the log. Short-lived threads log
 * a few hundred events each (a thread's first lines go through the file's shared cursor,
 * under its lock), and one long-lived thread logs in place in chunks of its own. The main
 * thread sends SIGUSR1 to one of them at a time, waiting for each handler to finish before
 * the next signal. The handler forks; the child allocates, frees and leaves through exit()
 * (the log's exit code runs), from the handler or, every other time, from the code the
 * handler interrupted, once that has gone on; the handler reaps it with a 3 s limit ("child
 * stuck", status 3). Prints OK after FORKS forks.
 * usage: log_fork_in_handler [FORKS] */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

static atomic_int stop, handled, forks;
static atomic_int short_tid, long_tid;
/* The thread a signal is on its way to: it does not exit before its handler ran (a thread's
 * pending signal dies with it). */
static atomic_int inflight;
/* Set in a child that returned from the handler: the thread it interrupted finishes what it
 * was doing (a log record, perhaps), then allocates and exits. */
static volatile sig_atomic_t in_child;

static double since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) + (t.tv_nsec - t0->tv_nsec) * 1e-9;
}

static void on_usr1(int sig) {
    (void)sig;
    int saved = errno;
    int odd = atomic_load(&forks) & 1;
    pid_t pid = fork();
    if (pid == 0) {
        free(malloc(100));
        free(malloc(100000));
        if (!odd)
            exit(0);
        in_child = 1;
        errno = saved;
        return;
    }
    if (pid > 0) {
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int st = 0;
        while (waitpid(pid, &st, WNOHANG) == 0) {
            if (since(&t0) > 3) {
                if (write(2, "child stuck\n", 12) < 0)
                    _exit(4);
                _exit(3);
            }
            usleep(100);
        }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            if (write(2, "child failed\n", 13) < 0)
                _exit(4);
            _exit(5);
        }
        atomic_fetch_add(&forks, 1);
    }
    errno = saved;
    atomic_store(&inflight, 0);
    atomic_fetch_add(&handled, 1);
}

static void churn(int n) {
    void *p[8] = {0};
    for (int i = 0; i < n; i++) {
        if (in_child) {
            free(malloc(50));
            exit(0);
        }
        int k = i & 7;
        free(p[k]);
        p[k] = malloc(16 + (i * 37) % 400);
        CHECK(p[k] != NULL);
    }
    for (int k = 0; k < 8; k++)
        free(p[k]);
}

static void *short_lived(void *arg) {
    (void)arg;
    atomic_store(&short_tid, (int)syscall(SYS_gettid));
    churn(300);
    atomic_store(&short_tid, 0);
    while (atomic_load(&inflight) == (int)syscall(SYS_gettid))
        usleep(10);
    return NULL;
}

static void *spawner(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
        pthread_t t;
        CHECK(pthread_create(&t, NULL, short_lived, NULL) == 0);
        CHECK(pthread_join(t, NULL) == 0);
    }
    return NULL;
}

static void *long_lived(void *arg) {
    (void)arg;
    atomic_store(&long_tid, (int)syscall(SYS_gettid));
    while (!atomic_load(&stop))
        churn(1000);
    atomic_store(&long_tid, 0);
    while (atomic_load(&inflight) == (int)syscall(SYS_gettid))
        usleep(10);
    return NULL;
}

int main(int argc, char **argv) {
    int want = argc > 1 ? atoi(argv[1]) : 100;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
    pthread_t a, b;
    CHECK(pthread_create(&a, NULL, spawner, NULL) == 0);
    CHECK(pthread_create(&b, NULL, long_lived, NULL) == 0);
    int sent = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (atomic_load(&forks) < want) {
        CHECK(since(&t0) < 60);
        atomic_int *target = sent % 2 ? &long_tid : &short_tid;
        int tid = atomic_load(target);
        if (tid != 0)
            atomic_store(&inflight, tid);
        if (tid == 0 || atomic_load(target) != tid ||
            syscall(SYS_tgkill, getpid(), tid, SIGUSR1) != 0) {
            atomic_store(&inflight, 0);
            usleep(50);
            continue;
        }
        sent++;
        /* One handler at a time: two threads forking at once is another matter. */
        while (atomic_load(&handled) < sent)
            CHECK(since(&t0) < 60);
        usleep(200);
    }
    atomic_store(&stop, 1);
    CHECK(pthread_join(a, NULL) == 0);
    CHECK(pthread_join(b, NULL) == 0);
    printf("OK\n");
    return 0;
}
