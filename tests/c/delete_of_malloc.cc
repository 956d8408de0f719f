// delete of a block from malloc (4 bytes).
#include <cstdio>
#include <cstdlib>

__attribute__((noinline)) static void release(int *p) { delete p; }

int main() {
    int *volatile p = static_cast<int *>(std::malloc(sizeof(int)));
    release(p);
    std::printf("continued\n");
    return 0;
}
