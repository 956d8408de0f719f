/* Dies of SIGSEGV writing through a null pointer: a crash that has nothing to do with the
 * heap, which the library can only say is not in its memory. */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    char *keep = malloc(32);
    volatile int *p = NULL;
    printf("start %p\n", (void *)keep);
    fflush(stdout);
    *p = 1;
    free(keep);
    return 0;
}
