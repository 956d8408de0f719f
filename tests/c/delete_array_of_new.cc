// delete[] of a block from new (one int).
#include <cstdio>

__attribute__((noinline)) static void release(int *p) { delete[] p; }

int main() {
    int *volatile p = new int(7);
    release(p);
    std::printf("continued\n");
    return 0;
}
