/* SIGSEGV and SIGBUS sent to the process (kill, sigqueue, raise), not raised by a fault, get
 * the program's own disposition exactly, as without the library (argv[1]):
 *   ignore   both ignored (SIG_IGN by signal and by sigaction): the program goes on
 *   handler  SIGSEGV handler with sa_mask {SIGUSR1} and SA_RESETHAND: called once with SIGUSR1
 *            and SIGSEGV blocked, finds its disposition reset to SIG_DFL; the mask is restored
 *            after it. SIGBUS handler with sa_mask {SIGUSR2} and SA_NODEFER: SIGBUS stays
 *            unblocked in it, and it stays installed (called twice)
 *   default  SIG_DFL again after a handler: kill(getpid(), SIGSEGV) ends the process by SIGSEGV
 *   fault    a real fault that is not the library's (a write to a read-only page), with the
 *            default disposition: the process dies of SIGSEGV
 *   ignored_fault  the same under SIG_IGN: a fault cannot be ignored, the process dies of SIGSEGV
 * Prints what happened, one line per step, then OK. */
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include "check.h"

static volatile sig_atomic_t segv_calls, bus_calls, segv_seen_usr1, segv_seen_self, segv_reset,
    bus_seen_usr2, bus_seen_self;

static int blocked(int sig) {
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    return sigismember(&cur, sig);
}

static void on_segv(int sig, siginfo_t *si, void *ctx) {
    (void)sig, (void)si, (void)ctx;
    segv_calls++;
    segv_seen_usr1 = blocked(SIGUSR1);
    segv_seen_self = blocked(SIGSEGV);
    struct sigaction now;
    sigaction(SIGSEGV, NULL, &now);
    segv_reset = now.sa_handler == SIG_DFL;
}

static void on_bus(int sig) {
    (void)sig;
    bus_calls++;
    bus_seen_usr2 = blocked(SIGUSR2);
    bus_seen_self = blocked(SIGBUS);
}

static void ignore(void) {
    CHECK(signal(SIGSEGV, SIG_IGN) != SIG_ERR);
    CHECK(kill(getpid(), SIGSEGV) == 0);
    CHECK(raise(SIGSEGV) == 0);
    union sigval v = {.sival_int = 7};
    CHECK(sigqueue(getpid(), SIGSEGV, v) == 0);
    printf("SIGSEGV ignored\n");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGBUS, &sa, NULL) == 0);
    CHECK(raise(SIGBUS) == 0);
    CHECK(kill(getpid(), SIGBUS) == 0);
    printf("SIGBUS ignored\n");
    struct sigaction now;
    CHECK(sigaction(SIGSEGV, NULL, &now) == 0 && now.sa_handler == SIG_IGN);
    CHECK(sigaction(SIGBUS, NULL, &now) == 0 && now.sa_handler == SIG_IGN);
    printf("dispositions kept\n");
}

static void handler(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR1);
    CHECK(sigaction(SIGSEGV, &sa, NULL) == 0);
    CHECK(kill(getpid(), SIGSEGV) == 0);
    printf("SIGSEGV handler: calls %d, SIGUSR1 blocked %d, SIGSEGV blocked %d, reset %d\n",
           (int)segv_calls, (int)segv_seen_usr1, (int)segv_seen_self, (int)segv_reset);
    printf("after it: SIGUSR1 blocked %d, SIGSEGV blocked %d\n", blocked(SIGUSR1),
           blocked(SIGSEGV));

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_bus;
    sa.sa_flags = SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    CHECK(sigaction(SIGBUS, &sa, NULL) == 0);
    CHECK(raise(SIGBUS) == 0);
    CHECK(kill(getpid(), SIGBUS) == 0);
    printf("SIGBUS handler: calls %d, SIGUSR2 blocked %d, SIGBUS blocked %d\n", (int)bus_calls,
           (int)bus_seen_usr2, (int)bus_seen_self);
    printf("after it: SIGUSR2 blocked %d\n", blocked(SIGUSR2));
}

static void dfl(void) {
    CHECK(signal(SIGSEGV, (void (*)(int))on_bus) != SIG_ERR);
    CHECK(signal(SIGSEGV, SIG_DFL) != SIG_ERR);
    printf("killing\n");
    fflush(stdout);
    kill(getpid(), SIGSEGV);
    printf("still alive\n");
}

static void fault(void) {
    static const char ro[4096] __attribute__((aligned(4096))) = "read-only";
    printf("faulting\n");
    fflush(stdout);
    *(volatile char *)ro = 'x';
    printf("still alive\n");
}

static void ignored_fault(void) {
    CHECK(signal(SIGSEGV, SIG_IGN) != SIG_ERR);
    fault();
}

int main(int argc, char **argv) {
    CHECK(argc == 2);
    if (!strcmp(argv[1], "ignore"))
        ignore();
    else if (!strcmp(argv[1], "handler"))
        handler();
    else if (!strcmp(argv[1], "default"))
        dfl();
    else if (!strcmp(argv[1], "fault"))
        fault();
    else if (!strcmp(argv[1], "ignored_fault"))
        ignored_fault();
    else
        CHECK(!"unknown mode");
    printf("OK\n");
    return 0;
}
