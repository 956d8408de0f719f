/* show_alloc_mem_ex and every command of show_alloc_mem_ex_cmd on a heap with known blocks:
 * a TINY block holding "Hello, ft_malloc!\n" + bytes 0..29, a SMALL block of 0xAB bytes, a
 * LARGE block, a freed block (quarantined with MALLOC_DEBUG=1). Prints the block addresses on
 * stderr as "ADDR name 0x..." so the test can find them in the dump. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void show_alloc_mem_ex(void) __attribute__((weak));
extern void show_alloc_mem_ex_cmd(const char *) __attribute__((weak));

static void cmd(const char *c) {
    printf("=== %s\n", c);
    fflush(stdout);
    show_alloc_mem_ex_cmd(c);
}

int main(int argc, char **argv) {
    if (!show_alloc_mem_ex || !show_alloc_mem_ex_cmd) {
        printf("no show_alloc_mem_ex\n");
        return 1;
    }
    char *t = malloc(48);
    memcpy(t, "Hello, ft_malloc!\n", 18);
    for (int i = 18; i < 48; i++) t[i] = (char)(i - 18);
    char *s = malloc(1000);
    memset(s, 0xAB, 1000);
    char *l = malloc(200000);
    memset(l, 'L', 200000);
    char *f = malloc(64);
    free(f);
    fprintf(stderr, "ADDR tiny %p\nADDR small %p\nADDR large %p\nADDR freed %p\n", t, s, l, f);
    const char *mode = argc > 1 ? argv[1] : "ex";
    if (!strcmp(mode, "ex")) {
        fflush(stdout);
        show_alloc_mem_ex();
        return 0;
    }
    char buf[128];
    cmd("help");
    snprintf(buf, sizeof buf, "hexdump %p", t);
    cmd(buf);
    snprintf(buf, sizeof buf, "hexdump %p 8", t + 7);
    cmd(buf);
    snprintf(buf, sizeof buf, "hexdump %p 64", t);
    cmd(buf);
    snprintf(buf, sizeof buf, "block %p", t + 3);
    cmd(buf);
    snprintf(buf, sizeof buf, "hexdump %p 40", l + 100000);
    cmd(buf);
    cmd("log 5");
    cmd("stats");
    cmd("check");
    cmd("leaks");
    /* bad commands */
    cmd("frobnicate");
    cmd("hexdump");
    cmd("hexdump nothex");
    fprintf(stderr, "ADDR stack %p\n", (void *)&buf);
    snprintf(buf, sizeof buf, "hexdump %p", (void *)&buf);
    cmd(buf);
    cmd("hexdump 0x0");
    cmd("hexdump 0xffffffffffffffff");
    cmd("hexdump 0x99999999999999999999");
    snprintf(buf, sizeof buf, "hexdump %p zz", t);
    cmd(buf);
    cmd("block 0x10");
    cmd("log x");
    cmd("");
    show_alloc_mem_ex_cmd(NULL);
    printf("OK\n");
    return 0;
}
