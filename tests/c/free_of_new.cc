// free() of a block from operator new (a 4-byte int).
#include <cstdio>
#include <cstdlib>

int main() {
    int *volatile p = new int(7);
    free(p);
    std::printf("continued\n");
    return 0;
}
