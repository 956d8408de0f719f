/* One memory bug in a guarded block, selected by argv[1]; the program prints the block's address
 * then commits the bug, and is expected to die of SIGSEGV (or SIGABRT at free for a canary):
 *   over16        read 1 byte just past a 16-byte block
 *   over13        read 1 byte just past a 13-byte block (for guard=exact)
 *   under16       write 1 byte just before a 16-byte block (for guard=below)
 *   over1008_word read 8 bytes (one uint64_t) just past a 1008-byte block
 *   over1008_7    read the byte 7 bytes past the end of a 1008-byte block
 *   gap13         write into the 3-byte alignment gap after a 13-byte block, then free it
 *   uaf_read      free a 16-byte block, then read its byte 3
 *   uaf_write     free a 16-byte block, then write its byte 3
 *   uaf_read_late / uaf_write_late   the same after 10,000 other allocations (of other sizes)
 *   large_over    write 4 KiB past the end of a 20000-byte (LARGE) block
 *   large_over_grown  the same past a block grown by realloc from 20000 to 300000 bytes (with
 *                 debugging on its pages move by mremap and the region behind is re-created)
 *   large_over_reused  the same after 400 LARGE blocks of many sizes were freed (the block is
 *                 carved from cached ranges whose regions behind were kept or merged)
 * If the bug does not fault, the program prints "NOT CAUGHT" and exits 3. */
#include <stdint.h>
#include <string.h>
#include "check.h"

static volatile char sink;

/* 10,000 other allocations, half of them kept live, none of 16 bytes. */
void *others_keep[5000];

static void others(void) {
    for (int i = 0; i < 10000; i++) {
        size_t n = 24 + (size_t)(i % 7) * 8;
        void *q = malloc(n);
        CHECK(q != NULL);
        memset(q, 'o', n);
        if (i % 2)
            free(q);
        else
            others_keep[i / 2] = q;
    }
    printf("others done\n");
    fflush(stdout);
}

int main(int argc, char **argv) {
    CHECK(argc == 2);
    const char *m = argv[1];
    if (!strcmp(m, "over16")) {
        char *p = announced_block(16);
        sink = ((volatile char *)p)[16];
    } else if (!strcmp(m, "over13")) {
        char *p = announced_block(13);
        sink = ((volatile char *)p)[13];
    } else if (!strcmp(m, "under16")) {
        char *p = announced_block(16);
        ((volatile char *)p)[-1] = 'u';
    } else if (!strcmp(m, "over1008_word")) {
        char *p = announced_block(1008);
        volatile uint64_t *w = (volatile uint64_t *)(p + 1008);
        sink = (char)*w;
    } else if (!strcmp(m, "over1008_7")) {
        char *p = announced_block(1008);
        sink = ((volatile char *)p)[1015];
    } else if (!strcmp(m, "gap13")) {
        char *p = announced_block(13);
        ((volatile char *)p)[13] = 'g';
        printf("gap written\n");
        fflush(stdout);
        free(p);
    } else if (!strncmp(m, "uaf_", 4)) {
        char *p = announced_block(16);
        /* Kept as an integer, so the compiler does not warn about the (deliberate) bug. */
        uintptr_t a = (uintptr_t)p;
        free(p);
        if (strstr(m, "_late"))
            others();
        if (!strncmp(m, "uaf_read", 8))
            sink = ((volatile char *)a)[3];
        else
            ((volatile char *)a)[3] = 'w';
    } else if (!strcmp(m, "large_over")) {
        char *p = announced_block(20000);
        ((volatile char *)p)[20000 + 4096] = 'L';
    } else if (!strcmp(m, "large_over_grown")) {
        char *p = announced_block(20000);
        static const size_t steps[] = {40000, 100000, 300000};
        size_t had = 20000;
        for (int i = 0; i < 3; i++) {
            p = realloc(p, steps[i]);
            CHECK(p != NULL);
            for (size_t j = 0; j < had; j++)
                CHECK(p[j] == (j < 20000 ? 'x' : 'g'));
            memset(p + had, 'g', steps[i] - had);
            had = steps[i];
        }
        printf("block %p %zu (grown)\n", (void *)p, had);
        fflush(stdout);
        ((volatile char *)p)[300000 + 4096] = 'L';
    } else if (!strcmp(m, "large_over_reused")) {
        static char *keep[8];
        unsigned s = 12345;
        for (int i = 0; i < 400; i++) {
            s = s * 1103515245u + 12345u;
            size_t n = 20000 + (size_t)(s >> 8) % 300000;
            char *q = malloc(n);
            CHECK(q != NULL);
            memset(q, 'r', n);
            int k = (int)((s >> 4) % 8);
            free(keep[k]);
            keep[k] = q;
        }
        for (int k = 0; k < 8; k++)
            free(keep[k]);
        char *p = announced_block(20000);
        ((volatile char *)p)[20000 + 4096] = 'L';
    } else {
        CHECK(!"unknown mode");
    }
    printf("NOT CAUGHT\n");
    return 3;
}
