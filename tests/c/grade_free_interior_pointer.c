/* Classic grading test 4: free(p + 5) and realloc(p + 5, 10) must not crash; realloc returns
 * NULL, the block p stays usable. With MALLOC_DEBUG unset each bad call prints one warning. */
#include <string.h>
#include "check.h"

int main(void) {
    char *addr = malloc(16);
    CHECK(addr != NULL);
    strcpy(addr, "abcdefghijklmno");
    free(NULL);
    free(addr + 5);
    if (realloc(addr + 5, 10) == NULL)
        printf("Bonjour\n");
    CHECK(strcmp(addr, "abcdefghijklmno") == 0);
    free(addr);
    printf("OK\n");
    return 0;
}
