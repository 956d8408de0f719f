/* Shared by the programs whose threads leave the addresses of leaked blocks in a dead frame:
 * `leave_in_dead_frame` leaks 16 blocks of `size`..`size + 15` bytes whose addresses stay at
 * the bottom of a 2 KiB frame once it returns (the calls its caller makes next, such as a
 * system call it then waits in, do not reach down that far); `sleeping` tells whether a thread
 * of the process waits in the kernel (state S). */
#ifndef STALE_FRAMES_H
#define STALE_FRAMES_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

__attribute__((noinline)) static void leave_in_dead_frame(size_t size) {
    void *volatile local[256];
    for (int i = 0; i < 256; i++)
        local[i] = 0;
    for (int i = 0; i < 16; i++) {
        local[i] = malloc(size + i);
        memset(local[i], 2, size);
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
#endif
