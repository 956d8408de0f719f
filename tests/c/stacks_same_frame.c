// Two callers with the same frame reach malloc through the same leaf at the same stack
// depth: the allocation's return address and stack pointer are the same for both, and only
// the words further up the stack tell them apart. Blocks from from_a are 24 bytes, those
// from from_b 40, so a leak group holding blocks of the other caller has the wrong byte count.
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) void *leaf(size_t n) {
    void *p = malloc(n);
    __asm__ volatile("" : : "r"(p) : "memory");
    return p;
}

__attribute__((noinline)) void *from_a(size_t n) {
    void *p = leaf(n);
    __asm__ volatile("" : : "r"(p) : "memory");
    return p;
}

__attribute__((noinline)) void *from_b(size_t n) {
    void *p = leaf(n);
    __asm__ volatile("" : : "r"(p) : "memory");
    return p;
}

int main(void) {
    unsigned long sum = 0;
    for (int i = 0; i < 300; i++) {
        void *p = (i % 3 == 2) ? from_b(40) : from_a(24);
        sum += (unsigned long)p & 1;
    }
    printf("done %lu\n", sum);
    return 0;
}
