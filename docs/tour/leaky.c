/* docs/TOUR.md: a leak. parse_line() copies the key and the value; main frees only the key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct entry { char *key; char *value; };

static char *copy(const char *s, size_t n) {
    char *d = malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static struct entry *parse_line(const char *line) {
    struct entry *e = malloc(sizeof *e);
    const char *eq = strchr(line, '=');
    e->key = copy(line, eq - line);
    e->value = copy(eq + 1, strlen(eq + 1));
    return e;
}

int main(void) {
    const char *lines[] = {"user=alice", "home=/home/alice", "shell=/bin/sh"};
    for (int i = 0; i < 3; i++) {
        struct entry *e = parse_line(lines[i]);
        printf("%s -> %s\n", e->key, e->value);
        free(e->key);
        free(e);                        /* e->value is never freed */
    }
    return 0;
}
