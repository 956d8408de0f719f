/* docs/TOUR.md: a use after free: the session is freed on logout, then read. */
#include <stdio.h>
#include <stdlib.h>

struct session { int id; int logged_in; char user[56]; };

static struct session *login(int id) {
    struct session *s = calloc(1, sizeof *s);
    s->id = id;
    s->logged_in = 1;
    return s;
}

static void logout(struct session *s) {
    free(s);
}

int main(void) {
    struct session *s = login(42);
    printf("session %p\n", (void *)s);
    fflush(stdout);
    logout(s);
    if (s->logged_in)                   /* use after free */
        printf("still logged in?\n");
    return 0;
}
