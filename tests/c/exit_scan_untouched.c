/* The leak check at exit reads neither the pages of the allocator's zones that no block has
 * reached yet nor pages of the program's that were never written. A child holds one block in
 * each of eight SMALL classes (each class has a zone of about 1.6 MiB, almost all of it never
 * touched) and maps 64 MiB that it never touches; waited for with wait4, its minor page faults
 * (its exit's leak check included) stay under a bound. Reading those pages cost some 20,000
 * faults. With swap in use a page that is not resident may hold data, so the check reads every
 * page: the child then maps nothing. */
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"

static void *keep[8];
static void *area;

int main(void) {
    struct sysinfo si;
    CHECK(sysinfo(&si) == 0);
    int swapping = si.totalswap > si.freeswap;
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        for (int i = 0; i < 8; i++) {
            keep[i] = malloc(2048 + (size_t)i * 1792);
            CHECK(keep[i] != NULL);
        }
        if (!swapping) {
            area = mmap(NULL, 64 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            CHECK(area != MAP_FAILED);
        }
        exit(0);
    }
    int st;
    struct rusage ru;
    CHECK(wait4(pid, &st, 0, &ru) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    fprintf(stderr, "child: %ld minor faults\n", ru.ru_minflt);
    CHECK(ru.ru_minflt < 600);
    puts("OK");
    return 0;
}
