/* 200,000 malloc/free pairs (a long log), then "survived" on stdout. */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    for (int i = 0; i < 200000; i++) {
        char *volatile p = malloc(16 + i % 100);
        free(p);
    }
    printf("survived\n");
    return 0;
}
