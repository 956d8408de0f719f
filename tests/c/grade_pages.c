/* The grading scenario in page faults, counted by the program itself around its loop (so the
 * start-up of the process and of the allocator does not count): 1024 times malloc(1024), each
 * written, never freed; or freed right after (`free`). One malloc and free before the count
 * binds the calls (lazy PLT binding faults pages of its own).
 * usage: grade_pages [free] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static long minflt(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_minflt;
}

int main(int argc, char **argv) {
    int with_free = argc > 1 && strcmp(argv[1], "free") == 0;
    free(malloc(1));
    long before = minflt();
    for (int i = 0; i < 1024; i++) {
        char *volatile p = malloc(1024);
        if (!p)
            return 2;
        p[0] = 42;
        if (with_free)
            free(p);
    }
    long after = minflt();
    printf("pages %ld\n", after - before);
    return 0;
}
