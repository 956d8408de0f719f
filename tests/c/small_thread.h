/* Runs `f` on a thread whose stack is `size` bytes (PTHREAD_STACK_MIN if more) and waits for
 * it. Returns 0, or 2 after printing why the thread could not be made ("... refused"). */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>

static int run_on_small_thread(void *(*f)(void *), size_t size) {
    if (size < PTHREAD_STACK_MIN)
        size = PTHREAD_STACK_MIN;
    pthread_attr_t a;
    pthread_attr_init(&a);
    if (pthread_attr_setstacksize(&a, size) != 0) {
        printf("setstacksize refused\n");
        return 2;
    }
    pthread_t t;
    if (pthread_create(&t, &a, f, NULL) != 0) {
        printf("pthread_create refused\n");
        return 2;
    }
    pthread_join(t, NULL);
    return 0;
}
