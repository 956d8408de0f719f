/* A correct program that still holds blocks at exit, all reachable: stdio buffers (stdout,
 * a FILE left open), a global pointer to a chain of blocks, a block reachable through an
 * interior pointer, setenv's copy of the environment, a getline buffer kept in a global.
 * With leaks on: no LEAK line (leaks=all lists them as REACHABLE). */
#include <stdlib.h>
#include <string.h>
#include "check.h"

struct node {
    struct node *next;
    void *extra;
    char data[40];
};

static struct node *list;
static char *inside;
static char *line;

int main(void) {
    for (int i = 0; i < 10; i++) {
        struct node *n = malloc(sizeof *n);
        CHECK(n != NULL);
        snprintf(n->data, sizeof n->data, "node %d", i);
        n->extra = NULL;
        n->next = list;
        list = n;
    }
    char *block = malloc(1000);
    CHECK(block != NULL);
    inside = block + 100;
    CHECK(setenv("FT_MALLOC_TEST_VAR", "some value", 1) == 0);
    FILE *f = fopen("/proc/self/status", "r");
    CHECK(f != NULL);
    size_t cap = 0;
    CHECK(getline(&line, &cap, f) > 0);
    char *big = malloc(300000);
    CHECK(big != NULL);
    memset(big, 'b', 300000);
    list->next->next->extra = big; /* reachable from the middle of the chain */
    printf("%s %s\n", list->data, getenv("FT_MALLOC_TEST_VAR"));
    printf("OK\n");
    return 0;
}
