/* Classic grading test 3: malloc 16 MiB, write it, realloc to 128 MiB: the content is kept. */
#include <string.h>
#include "check.h"

#define M (1024 * 1024)

int main(void) {
    char *addr1 = malloc(16 * M);
    CHECK(addr1 != NULL);
    for (size_t i = 0; i < 16 * M; i++)
        addr1[i] = (char)(i % 251);
    strcpy(addr1, "Bonjour\n");
    char *addr3 = realloc(addr1, 128 * M);
    CHECK(addr3 != NULL);
    CHECK(strcmp(addr3, "Bonjour\n") == 0);
    for (size_t i = 9; i < 16 * M; i++)
        CHECK(addr3[i] == (char)(i % 251));
    memset(addr3 + 16 * M, 1, 112 * M);
    fputs(addr3, stdout);
    free(addr3);
    printf("OK\n");
    return 0;
}
