/* exit() from a thread while main waits in pthread_join: main leaked 16 blocks (300..315 bytes)
 * in a call that returned, whose frame below main's stack pointer still holds their addresses
 * (no references), and keeps a block (7171 bytes) in its own frame (a reference).
 * usage: leak_main_waits */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "stale_frames.h"

static volatile int leaked;
static pid_t main_tid;

static void *ender(void *arg) {
    for (int i = 0; i < 2000 && !(leaked && sleeping(main_tid)); i++)
        usleep(1000);
    printf("exit from a thread\n");
    fflush(stdout);
    exit(0);
}

int main(void) {
    main_tid = gettid();
    char *volatile kept = malloc(7171);
    memset(kept, 7, 7171);
    pthread_t t;
    pthread_create(&t, NULL, ender, NULL);
    leave_in_dead_frame(300);
    leaked = 1;
    pthread_join(t, NULL);
    return 1;
}
