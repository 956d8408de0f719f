/* The leak check at exit reads the program's memory, not the allocator's own bookkeeping, and
 * no page that holds nothing: a child is waited for with wait4, and its minor page faults (its
 * exit's leak check included) stay under a bound.
 * - no argument: the child allocates a little and exits. Reading the page map's whole first
 *   level (2 MiB of the library's .bss) at exit faulted in some 500 pages more.
 * - "untouched": the child holds one block in each of eight SMALL classes (each class has a
 *   zone of about 1.6 MiB, almost all of it never touched) and maps 64 MiB that it never
 *   touches. Reading those pages cost some 20,000 faults. With swap in use a page that is not
 *   resident may hold data, so the check reads every page: the child then maps nothing. */
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"

static void *keep[8];
static void *area;

static void untouched(int swapping) {
    for (int i = 0; i < 8; i++) {
        keep[i] = malloc(2048 + (size_t)i * 1792);
        CHECK(keep[i] != NULL);
    }
    if (!swapping) {
        area = mmap(NULL, 64 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CHECK(area != MAP_FAILED);
    }
}

int main(int argc, char **argv) {
    int wide = argc > 1 && strcmp(argv[1], "untouched") == 0;
    struct sysinfo si;
    CHECK(sysinfo(&si) == 0);
    int swapping = si.totalswap > si.freeswap;
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        if (wide) {
            untouched(swapping);
        } else {
            void *p = malloc(100);
            free(p);
        }
        exit(0);
    }
    int st;
    struct rusage ru;
    CHECK(wait4(pid, &st, 0, &ru) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    fprintf(stderr, "child: %ld minor faults\n", ru.ru_minflt);
    CHECK(ru.ru_minflt < (wide ? 600 : 300));
    puts("OK");
    return 0;
}
