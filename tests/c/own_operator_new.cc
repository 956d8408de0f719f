// A program's own operator new and new[] around malloc, with the default operator delete:
// delete releases what malloc made, which is no mismatch. They go through `cxx_churn`; then,
// with argv[1] = "overflow", one int array is written one element past its end before
// delete[] (the canary check still runs). Prints OK.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include "cxx_churn.h"

void *operator new(std::size_t n) {
    void *p = std::malloc(n ? n : 1);
    if (!p)
        throw std::bad_alloc();
    return p;
}

void *operator new[](std::size_t n) {
    void *p = std::malloc(n ? n : 1);
    if (!p)
        throw std::bad_alloc();
    return p;
}

int main(int argc, char **argv) {
    cxx_churn();
    if (argc > 1 && std::strcmp(argv[1], "overflow") == 0) {
        int *volatile a = new int[4];
        a[4] = 1;
        delete[] a;
    }
    std::puts("OK");
    return 0;
}
