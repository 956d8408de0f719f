// delete of a block from new[] (one int: 4 bytes, no array cookie for a trivial type).
#include <cstdio>

__attribute__((noinline)) static void release(int *p) { delete p; }

int main() {
    int *volatile p = new int[1];
    release(p);
    std::printf("continued\n");
    return 0;
}
