/* Image 1 frees a 24-byte block twice (run with on_error=continue), then execs this same
 * program (same pid), whose image 2 frees a 40-byte block twice: the report file must keep
 * both images' reports. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    void *volatile p = malloc(argc > 1 ? 40 : 24);
    free(p);
    free(p);
    if (argc > 1) {
        printf("OK\n");
        return 0;
    }
    fflush(stdout);
    execl("/proc/self/exe", argv[0], "again", (char *)0);
    perror("execl");
    return 1;
}
