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

static volatile int leaked;
static pid_t main_tid;

/* 16 addresses at the bottom of a 2 KiB frame, which pthread_join does not reach down to. */
__attribute__((noinline)) static void deep(void) {
    void *volatile local[256];
    for (int i = 0; i < 256; i++)
        local[i] = 0;
    for (int i = 0; i < 16; i++) {
        local[i] = malloc(300 + i);
        memset(local[i], 3, 300);
    }
}

/* Whether thread `tid` sleeps in the kernel (state S in /proc/self/task/TID/stat). */
static int sleeping(pid_t tid) {
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    FILE *f = fopen(path, "r");
    int s = f && fgets(line, sizeof line, f) && strstr(line, ") S ");
    if (f)
        fclose(f);
    return s;
}

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
    deep();
    leaked = 1;
    pthread_join(t, NULL);
    return 1;
}
