/* Leaks that hold the only pointers to other leaked blocks. A list of 4 nodes whose head is
 * lost: the head is a direct leak, the 3 nodes after it indirect ones (one call site, two LEAK
 * lines). A tree whose root is lost: the root direct, its 2 children (another call site)
 * indirect. A ring of 3 blocks that nothing else points to: one of them stands for the ring
 * as a direct leak, the other 2 are indirect. A block that points only to itself: direct.
 * A list that stays reachable from a global is no leak at all. */
#include <string.h>
#include "check.h"

struct node {
    struct node *next;
    char pad[24];
};

/* Not static: the compiler keeps a store to it. */
struct node *volatile kept;

__attribute__((noinline)) static struct node *list_node(struct node *next) {
    struct node *n = malloc(sizeof *n);
    CHECK(n != NULL);
    memset(n->pad, 'l', sizeof n->pad);
    n->next = next;
    return n;
}

__attribute__((noinline)) static void *tree_child(void) {
    void *c = malloc(48);
    CHECK(c != NULL);
    memset(c, 'c', 48);
    return c;
}

__attribute__((noinline)) static void **tree_root(void) {
    void **r = malloc(2 * sizeof *r);
    CHECK(r != NULL);
    r[0] = tree_child();
    r[1] = tree_child();
    return r;
}

__attribute__((noinline)) static struct node *ring_node(void) {
    struct node *n = malloc(sizeof *n);
    CHECK(n != NULL);
    memset(n, 'r', sizeof *n);
    return n;
}

__attribute__((noinline)) static void *self_block(void) {
    void **b = malloc(64);
    CHECK(b != NULL);
    memset(b, 's', 64);
    b[3] = b;
    return b;
}

__attribute__((noinline)) static void make(void) {
    struct node *volatile head = NULL;
    for (int i = 0; i < 4; i++)
        head = list_node(head);
    void **volatile root = tree_root();
    struct node *a = ring_node(), *b = ring_node(), *c = ring_node();
    a->next = b;
    b->next = c;
    c->next = a;
    void *volatile self = self_block();
    kept = list_node(list_node(NULL));
    (void)self;
    (void)root;
}

/* Overwrites the dead stack below main's frame, where the last pointers may linger. */
__attribute__((noinline)) static void clear_stack(void) {
    volatile char buf[1 << 16];
    memset((char *)buf, 0, sizeof buf);
}

int main(void) {
    make();
    clear_stack();
    printf("OK\n");
    return 0;
}
