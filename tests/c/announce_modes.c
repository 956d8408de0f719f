/* What a process announces (FT_MALLOC_ANNOUNCE), by mode (argv[1]):
 *   fork      one double free, then a forked child makes two and exits; the parent waits
 *   closefds  closes every descriptor from 3 up (as daemons and spawners do), allocates, then
 *             prints any descriptor of its own that names the announce file (none may)
 *   exec      executes argv[2] (same pid, a new image)
 *   _exit     ends with _exit (no exit handlers)
 * Prints OK last when it ends normally. Run with MALLOC_DEBUG=...,on_error=continue. */
#include "check.h"
#include <dirent.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline)) static void double_free(void) {
    char *volatile p = malloc(24);
    CHECK(p != NULL);
    free(p);
    free(p);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "fork") == 0) {
        double_free();
        fflush(stdout);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            double_free();
            double_free();
            exit(0);
        }
        int st;
        CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st));
    } else if (strcmp(mode, "closefds") == 0) {
        for (int fd = 3; fd < 1024; fd++) close(fd);
        const char *ann = getenv("FT_MALLOC_ANNOUNCE");
        CHECK(ann != NULL);
        for (int i = 0; i < 1000; i++) free(malloc(100 + i));
        DIR *d = opendir("/proc/self/fd");
        CHECK(d != NULL);
        struct dirent *e;
        char link[64], target[4096];
        while ((e = readdir(d)) != NULL) {
            snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
            ssize_t n = readlink(link, target, sizeof target - 1);
            if (n <= 0) continue;
            target[n] = 0;
            if (strcmp(target, ann) == 0) printf("open: fd %s\n", e->d_name);
        }
        closedir(d);
    } else if (strcmp(mode, "exec") == 0 && argc > 2) {
        execv(argv[2], argv + 2);
        perror(argv[2]);
        return 127;
    } else if (strcmp(mode, "_exit") == 0) {
        free(malloc(10));
        _exit(0);
    }
    printf("OK\n");
    return 0;
}
