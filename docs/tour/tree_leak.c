/* A configuration kept as a tree, and reloaded: the old tree is dropped without being freed.
 * Its root is the leak, and the nodes under it are lost with it. The cache entries are kept
 * until exit on purpose, then dropped: a known leak. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node {
    struct node *left, *right;
    char name[16];
};

static struct node *config;
static char *cache[4];

static struct node *node(const char *name, struct node *left, struct node *right)
{
    struct node *n = malloc(sizeof *n);
    n->left = left;
    n->right = right;
    snprintf(n->name, sizeof n->name, "%s", name);
    return n;
}

static void load(const char *version)
{
    config = node(version, node("left", NULL, NULL), node("right", NULL, NULL));
}

static char *cache_entry(int i)
{
    char *e = malloc(32);
    snprintf(e, 32, "entry %d", i);
    return e;
}

int main(void)
{
    load("v1");
    load("v2"); /* v1's tree is lost */
    printf("%s has %s and %s\n", config->name, config->left->name, config->right->name);
    for (int i = 0; i < 4; i++)
        cache[i] = cache_entry(i);
    printf("%s\n", cache[3]);
    memset(cache, 0, sizeof cache);
    return 0;
}
