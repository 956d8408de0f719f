// Calls every entry point of the malloc family a known number of times, in the order of the
// library's numbering (ft_format::Op): entry point k (0 = malloc ... 14 = malloc_usable_size)
// is called 20 + k times, except malloc (at least 21: the C++ runtime and stdio allocate too)
// and new/new[] (3 more, for the deletes). With MALLOC_DEBUG=...,dump_at_exit the library
// prints its counters ("Calls :") in that numbering; its log names every call.
#include <cstdio>
#include <cstdlib>
#include <malloc.h>
extern "C" void *reallocarray(void *, size_t, size_t);
extern "C" void *pvalloc(size_t);
extern "C" void *valloc(size_t);

static void *keep[16][40];

int main() {
    int k = 0;
    for (int i = 0; i < 20 + k; i++) keep[k][i] = malloc(24);
    k++; // 1 calloc
    for (int i = 0; i < 20 + k; i++) keep[k][i] = calloc(3, 8);
    k++; // 2 realloc: one block grown step by step
    void *r = malloc(24);
    for (int i = 0; i < 20 + k; i++) r = realloc(r, 100 + 8 * i);
    k++; // 3 reallocarray
    for (int i = 0; i < 20 + k; i++) keep[k][i] = reallocarray(NULL, 2, 100);
    k++; // 4 memalign
    for (int i = 0; i < 20 + k; i++) keep[k][i] = memalign(64, 300);
    k++; // 5 posix_memalign
    for (int i = 0; i < 20 + k; i++)
        if (posix_memalign(&keep[k][i], 64, 500)) return 1;
    k++; // 6 aligned_alloc
    for (int i = 0; i < 20 + k; i++) keep[k][i] = aligned_alloc(64, 1024);
    k++; // 7 valloc
    for (int i = 0; i < 20 + k; i++) keep[k][i] = valloc(2000);
    k++; // 8 pvalloc
    for (int i = 0; i < 20 + k; i++) keep[k][i] = pvalloc(5000);
    k++; // 9 new
    for (int i = 0; i < 20 + k; i++) keep[k][i] = new long;
    k++; // 10 new[]
    for (int i = 0; i < 20 + k; i++) keep[k][i] = new char[9000];
    k++; // 11 free: the 20 malloc'd and 11 of the calloc'd blocks
    for (int i = 0; i < 20; i++) free(keep[0][i]);
    for (int i = 0; i < 11; i++) free(keep[1][i]);
    k++; // 12 delete: the 29 longs, then 3 more
    for (int i = 0; i < 29; i++) delete (long *)keep[9][i];
    for (int i = 0; i < 3; i++) delete new long;
    k++; // 13 delete[]: the 30 arrays, then 3 more
    for (int i = 0; i < 30; i++) delete[] (char *)keep[10][i];
    for (int i = 0; i < 3; i++) delete[] new char[9000];
    k++; // 14 malloc_usable_size
    size_t u = 0;
    for (int i = 0; i < 20 + k; i++) u += malloc_usable_size(keep[3][i % 23]);
    printf("%s\n", u >= 200 ? "OK" : "usable size too small");
    return 0;
}
