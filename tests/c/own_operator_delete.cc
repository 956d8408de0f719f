// A program's own operator delete and delete[] around free, with the default operator new:
// free releases what operator new made, from inside the program's delete, which is no
// mismatch. They go through `cxx_churn`; prints OK.
#include <cstdio>
#include <cstdlib>
#include "cxx_churn.h"

void operator delete(void *p) noexcept { std::free(p); }
void operator delete(void *p, std::size_t) noexcept { std::free(p); }
void operator delete[](void *p) noexcept { std::free(p); }
void operator delete[](void *p, std::size_t) noexcept { std::free(p); }

int main() {
    cxx_churn();
    std::puts("OK");
    return 0;
}
