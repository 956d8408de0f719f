// operator delete(p, 32) of a 24-byte block from operator new(24): a sized delete that names
// the wrong size.
#include <cstdio>
#include <new>

int main() {
    void *volatile p = ::operator new(24);
    ::operator delete(p, 32);
    std::printf("continued\n");
    return 0;
}
