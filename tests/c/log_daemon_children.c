/* A daemon: the first process allocates 11 bytes, forks and exits; its child waits until it
 * is gone, closes every descriptor above 2 (close_range), allocates 22 bytes and runs itself
 * again as a grandchild (fork + exec) that allocates 33 bytes, then writes DIR/done.
 * usage: log_daemon_children DIR */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    if (argc > 2) {
        void *volatile p = malloc(33);
        free(p);
        return 0;
    }
    void *volatile a = malloc(11);
    free(a);
    pid_t first = getpid();
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return 3;
    if (pid > 0)
        return 0;
    for (int i = 0; i < 5000 && getppid() == first; i++)
        usleep(1000);
    if (syscall(SYS_close_range, 3U, ~0U, 0) != 0)
        return 4;
    void *volatile b = malloc(22);
    free(b);
    pid_t g = fork();
    if (g == 0) {
        execl("/proc/self/exe", argv[0], argv[1], "grand", (char *)0);
        _exit(5);
    }
    int st = 0;
    waitpid(g, &st, 0);
    char done[4096];
    snprintf(done, sizeof done, "%s/done", argv[1]);
    int fd = open(done, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
        dprintf(fd, "%d %d %d\n", (int)first, (int)getpid(), (int)g);
        close(fd);
    }
    return 0;
}
