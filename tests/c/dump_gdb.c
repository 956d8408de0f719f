/* Stopped at stop_here() under gdb, with a second thread spinning in malloc/free: gdb calls
 * show_alloc_mem_ex() and show_alloc_mem_ex_cmd(dump_cmd); the command string is already in
 * the program's memory (a string literal typed in gdb would make gdb call our malloc). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char dump_cmd[64];
char log_cmd[] = "log 3";
static volatile int stop;

void stop_here(void) {
    __asm__ volatile("" ::: "memory");
}

static void *churn(void *arg) {
    (void)arg;
    while (!stop) {
        void *p = malloc(100);
        free(p);
    }
    return NULL;
}

int main(void) {
    char *block = malloc(32);
    memcpy(block, "gdb sees this block, 32 bytes..", 32);
    snprintf(dump_cmd, sizeof dump_cmd, "hexdump %p", (void *)block);
    pthread_t t;
    pthread_create(&t, NULL, churn, NULL);
    for (volatile int i = 0; i < 2000000; i++)
        ;
    stop_here();
    stop = 1;
    pthread_join(t, NULL);
    free(block);
    puts("OK");
    return 0;
}
