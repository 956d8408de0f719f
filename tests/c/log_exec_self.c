/* Image 1 allocates 111 bytes, then execs this same program (same pid) with "again";
 * image 2 allocates 222 bytes. The log must keep both images' records. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc > 1) {
        void *p = malloc(222);
        free(p);
        printf("OK\n");
        return 0;
    }
    void *p = malloc(111);
    free(p);
    fflush(stdout);
    execl("/proc/self/exe", argv[0], "again", (char *)0);
    perror("execl");
    return 1;
}
