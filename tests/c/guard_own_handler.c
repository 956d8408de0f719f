/* A program with a SIGSEGV handler of its own, installed after the library's (argv[1] =
 * "sigaction" or "signal"). It faults on a PROT_NONE page of its own mapping twice: its handler
 * is called each time and siglongjmps out. sigaction(SIGSEGV, NULL, &old) reports its own handler.
 * Then, with argv[2] = "overflow", it reads one byte past a 16-byte block: in guard mode that is
 * the library's fault, reported, and the process dies of SIGSEGV (the program's handler must not
 * be called: it would exit 4). Otherwise it prints OK. */
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "check.h"

static sigjmp_buf jb;
static volatile sig_atomic_t armed, calls;
static volatile char sink;

static void on_segv(int sig) {
    calls++;
    if (armed) {
        armed = 0;
        siglongjmp(jb, 1);
    }
    static const char msg[] = "program handler called for a fault that is not its own\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(4);
}

static void on_segv_info(int sig, siginfo_t *si, void *ctx) {
    (void)si;
    (void)ctx;
    on_segv(sig);
}

int main(int argc, char **argv) {
    CHECK(argc >= 2);
    int use_sigaction = !strcmp(argv[1], "sigaction");
    CHECK(use_sigaction || !strcmp(argv[1], "signal"));
    if (use_sigaction) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_segv_info;
        sa.sa_flags = SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        CHECK(sigaction(SIGSEGV, &sa, NULL) == 0);
        struct sigaction old;
        CHECK(sigaction(SIGSEGV, NULL, &old) == 0);
        CHECK(old.sa_sigaction == on_segv_info);
    } else {
        CHECK(signal(SIGSEGV, on_segv) != SIG_ERR);
        struct sigaction old;
        CHECK(sigaction(SIGSEGV, NULL, &old) == 0);
        CHECK(old.sa_handler == on_segv);
    }
    long page = sysconf(_SC_PAGESIZE);
    char *own = mmap(NULL, (size_t)page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(own != MAP_FAILED);
    for (int round = 0; round < 2; round++) {
        void *keep = malloc(16); /* the library keeps working in between */
        CHECK(keep != NULL);
        if (sigsetjmp(jb, 1) == 0) {
            armed = 1;
            sink = own[100];
            printf("NOT FAULTED\n");
            return 3;
        }
        CHECK(calls == round + 1);
        free(keep);
        printf("own fault %d handled\n", round + 1);
    }
    fflush(stdout);
    if (argc > 2 && !strcmp(argv[2], "overflow")) {
        volatile char *p = malloc(16);
        CHECK(p != NULL);
        printf("block %p 16\n", (void *)p);
        fflush(stdout);
        sink = p[16];
        printf("NOT CAUGHT\n");
        return 3;
    }
    printf("OK\n");
    return 0;
}
