/* Real code addresses for the reader's stack tests, printed for a log the test writes itself:
 * the program's and libc's load bases, two libc functions (strdup, getdelim) to stand for runtime
 * frames, and return addresses inside the program's functions, each noted right after a call
 * on a line marked SITE-... (a return address is looked up one byte back: that line). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *ret[4];

__attribute__((noinline)) static void note(int i) { ret[i] = __builtin_return_address(0); }

__attribute__((noinline)) static char *next_token(const char *w) {
    char *s = strdup(w); note(0); /* SITE-NEXT-TOKEN */
    return s;
}

__attribute__((noinline)) static char *copy_name(const char *w) {
    char *s = strdup(w); note(1); /* SITE-COPY-NAME */
    return s;
}

int main(void) {
    char *a = next_token("a"); note(2); /* SITE-MAIN-1 */
    char *b = copy_name("b"); note(3); /* SITE-MAIN-2 */
    void *sd = dlsym(RTLD_DEFAULT, "strdup");
    void *gd = dlsym(RTLD_DEFAULT, "getdelim");
    Dl_info exe, libc;
    if (!sd || !gd || !dladdr((void *)main, &exe) || !dladdr(sd, &libc)) return 1;
    printf("exe %p\nlibc %p %s\nstrdup %p\ngetdelim %p\n", exe.dli_fbase, libc.dli_fbase,
           libc.dli_fname, sd, gd);
    printf("next_token %p\ncopy_name %p\nmain1 %p\nmain2 %p\n", ret[0], ret[1], ret[2], ret[3]);
    free(a);
    free(b);
    puts("OK");
    return 0;
}
