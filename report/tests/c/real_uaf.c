/* A block used after it was freed, for the real-library tests (tests/real_library.rs):
 * prints its address and exits normally. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct record { char name[32]; int id; };

__attribute__((noinline)) static struct record *make_record(int id) {
    struct record *r = malloc(sizeof *r); /* UAF-MALLOC */
    snprintf(r->name, sizeof r->name, "record-%d", id);
    r->id = id;
    return r;
}

__attribute__((noinline)) static void drop_record(struct record *r) {
    free(r); /* UAF-FREE */
}

int main(void) {
    void *other = malloc(300);
    struct record *r = make_record(7);
    drop_record(r);
    volatile int id = r->id; /* the use after free: a read of the freed block */
    (void)id;
    printf("%p\n", (void *)r);
    free(other);
    return 0;
}
