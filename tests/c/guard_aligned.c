/* Aligned allocations in guard mode keep their alignment and their content works:
 * posix_memalign 64 and 4096, aligned_alloc, memalign, valloc, each written and read back whole,
 * then freed. With argv[1] = "overflow", a posix_memalign(4096, 4096) block is then read one
 * byte past its end (it ends at the guard page: the program dies of SIGSEGV). */
#include <malloc.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include "check.h"

static volatile char sink;

static void fill_check(void *p, size_t n, int seed) {
    unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        c[i] = (unsigned char)(i * 31 + seed);
    for (size_t i = 0; i < n; i++)
        CHECK(c[i] == (unsigned char)(i * 31 + seed));
}

struct req {
    const char *how;
    size_t align;
    size_t size;
};

int main(int argc, char **argv) {
    long page = sysconf(_SC_PAGESIZE);
    CHECK(page > 0);
    struct req reqs[] = {
        {"posix_memalign", 8, 13},     {"posix_memalign", 16, 24},    {"aligned_alloc", 16, 40},
        {"memalign", 8, 13},           {"posix_memalign", 32, 24},    {"posix_memalign", 64, 1},     {"posix_memalign", 64, 13},    {"posix_memalign", 64, 64},
        {"posix_memalign", 64, 1000},  {"posix_memalign", 64, 100000}, {"posix_memalign", 4096, 1},
        {"posix_memalign", 4096, 13},  {"posix_memalign", 4096, 4096}, {"posix_memalign", 4096, 5000},
        {"posix_memalign", 4096, 70000}, {"posix_memalign", 65536, 100}, {"aligned_alloc", 32, 96},
        {"aligned_alloc", 64, 640},    {"aligned_alloc", 4096, 8192}, {"memalign", 16, 24},
        {"memalign", 128, 100},        {"memalign", 256, 3},          {"memalign", 8192, 10000},
        {"valloc", 0, 1},              {"valloc", 0, 5000},           {"valloc", 0, 123456},
    };
    size_t n = sizeof reqs / sizeof reqs[0];
    void *ptrs[sizeof reqs / sizeof reqs[0]];
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        struct req *r = &reqs[i];
        size_t align = r->align ? r->align : (size_t)page;
        void *p = NULL;
        if (!strcmp(r->how, "posix_memalign"))
            CHECK(posix_memalign(&p, align, r->size) == 0);
        else if (!strcmp(r->how, "aligned_alloc"))
            p = aligned_alloc(align, r->size);
        else if (!strcmp(r->how, "memalign"))
            p = memalign(align, r->size);
        else
            p = valloc(r->size);
        CHECK(p != NULL);
        if ((uintptr_t)p % align != 0) {
            fprintf(stderr, "%s(%zu, %zu) = %p: not aligned\n", r->how, align, r->size, p);
            bad++;
        }
        CHECK(malloc_usable_size(p) >= r->size);
        fill_check(p, r->size, (int)i);
        ptrs[i] = p;
    }
    /* All still intact once all are live. */
    for (size_t i = 0; i < n; i++) {
        unsigned char *c = ptrs[i];
        for (size_t j = 0; j < reqs[i].size; j++)
            CHECK(c[j] == (unsigned char)(j * 31 + (int)i));
    }
    for (size_t i = 0; i < n; i++)
        free(ptrs[i]);
    CHECK(bad == 0);
    if (argc > 1 && !strcmp(argv[1], "overflow")) {
        void *p = NULL;
        CHECK(posix_memalign(&p, 4096, 4096) == 0);
        CHECK((uintptr_t)p % 4096 == 0);
        memset(p, 'a', 4096);
        printf("block %p 4096\n", p);
        fflush(stdout);
        sink = ((volatile char *)p)[4096];
        printf("NOT CAUGHT\n");
        return 3;
    }
    printf("OK\n");
    return 0;
}
