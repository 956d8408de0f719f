/* Deletes the even nodes of a list while walking it: reads n->next after free(n). Under
 * MALLOC_DEBUG=1 the freed node is filled, so the walk follows a wild pointer and the program
 * dies of SIGSEGV; under MALLOC_DEBUG=full the freed node is inaccessible and the library
 * reports the use after free at the faulting read. */
#include <stdio.h>
#include <stdlib.h>

struct node {
    struct node *next;
    int value;
};

int main(void) {
    struct node *head = NULL;
    for (int i = 0; i < 100; i++) {
        struct node *n = malloc(sizeof *n);
        n->value = i;
        n->next = head;
        head = n;
    }
    for (struct node *n = head; n; n = n->next) /* USE-AFTER-FREE */
        if (n->value % 2 == 0) free(n);
    puts("OK");
    return 0;
}
