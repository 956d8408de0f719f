/* Pointers the program dies of, none in a guard page:
 *   list    deletes list nodes while walking the list: the next pointer is read from a freed
 *           node (free fill)
 *   uninit  follows a pointer of a new block that was never set (allocation fill)
 *   past    reads one pointer past the end of an array of pointers (canary bytes)
 *   null    writes through a null pointer (not our memory at all)
 *   handled as list, with the program's own SIGSEGV handler, which exits 42: the program
 *           expects its faults, so they are its own business
 * Each prints "start" first, so the test knows the program got that far. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

struct node {
    struct node *next;
    long val;
};

static struct node *build(int n)
{
    struct node *head = NULL;
    for (int i = n - 1; i >= 0; i--) {
        struct node *x = malloc(sizeof *x);
        x->next = head;
        x->val = i;
        head = x;
    }
    return head;
}

static long remove_even(struct node **head)
{
    long kept = 0;
    /* The bug: after free(n), the loop still reads n->next. */
    for (struct node *n = *head; n; n = n->next) {
        if (n->val % 2 == 0)
            free(n);
        else
            kept += n->val;
    }
    return kept;
}

static void on_segv(int sig)
{
    (void)sig;
    static const char msg[] = "caught\n";
    write(1, msg, sizeof msg - 1);
    _exit(42);
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "list";
    printf("start\n");
    fflush(stdout);
    if (!strcmp(what, "handled")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_segv;
        sigaction(SIGSEGV, &sa, NULL);
        what = "list";
    }
    if (!strcmp(what, "list")) {
        struct node *head = build(8);
        printf("%ld\n", remove_even(&head));
    } else if (!strcmp(what, "uninit")) {
        struct node *n = malloc(sizeof *n);
        n->next->val = 1;
        printf("%ld\n", n->val);
    } else if (!strcmp(what, "past")) {
        struct node **arr = malloc(3 * sizeof *arr);
        long sum = 0;
        for (int i = 0; i < 3; i++)
            arr[i] = build(1);
        for (int i = 0; i <= 3; i++) /* one too many */
            sum += arr[i]->val;
        printf("%ld\n", sum);
    } else {
        volatile int *p = NULL;
        *p = 1;
    }
    return 0;
}
