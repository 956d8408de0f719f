/* Plain operator new and new[] in guard mode return 16-byte aligned storage for every size,
 * as C++ code expects (__STDCPP_DEFAULT_NEW_ALIGNMENT__): sizes 1 to 200, each block written
 * whole, and a header placed at the first 16-byte boundary at or after the block's start, as
 * LLVM's allocators place theirs, read back. The blocks are freed at the end; prints OK. */
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include "check.h"

struct alignas(16) Header {
    std::uint64_t a, b;
};

int main() {
    void *blocks[400];
    int n = 0;
    for (std::size_t size = 1; size <= 200; size++) {
        char *p = static_cast<char *>(::operator new(size));
        char *q = new char[size];
        CHECK(reinterpret_cast<std::uintptr_t>(p) % 16 == 0);
        CHECK(reinterpret_cast<std::uintptr_t>(q) % 16 == 0);
        std::memset(p, 0x5a, size);
        std::memset(q, 0xa5, size);
        if (size >= sizeof(Header)) {
            std::uintptr_t at = (reinterpret_cast<std::uintptr_t>(p) + 15) & ~std::uintptr_t(15);
            Header *h = new (reinterpret_cast<void *>(at)) Header{size, ~std::uint64_t(size)};
            CHECK(h->a == size && h->b == ~std::uint64_t(size));
        }
        blocks[n++] = p;
        blocks[n++] = q;
    }
    for (int i = 0; i < n; i += 2) {
        ::operator delete(blocks[i]);
        delete[] static_cast<char *>(blocks[i + 1]);
    }
    std::puts("OK");
    return 0;
}
