/* Leaks one block from a SIGUSR1 handler (raised by raise_from) and one from a thread started
 * with pthread_create (in thread_body): both leak reports must end cleanly, the handler's
 * through the signal frame into raise_from, the thread's at its first frame. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static void *volatile keep[2];

static void on_usr1(int sig) {
    (void)sig;
    keep[0] = malloc(111);
    keep[0] = NULL;
}

__attribute__((noinline)) void raise_from(void) {
    raise(SIGUSR1);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void *thread_body(void *arg) {
    (void)arg;
    keep[1] = malloc(222);
    keep[1] = NULL;
    return NULL;
}

int main(void) {
    signal(SIGUSR1, on_usr1);
    raise_from();
    pthread_t t;
    pthread_create(&t, NULL, thread_body, NULL);
    pthread_join(t, NULL);
    puts("OK");
    return 0;
}
