/* Loads library A, allocates through it, unloads it; then library B (likely at A's addresses),
 * then A again. Each allocation's stack in the log must go through the library's plugin_alloc
 * to run() and main: rules cached for A are not used for B. Prints, per allocation, its block
 * and plugin_alloc's address, and the address of run(). Usage: unwind_dlopen_dlclose A.so B.so */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) char *run(const char *path, const char *s)
{
	void *h = dlopen(path, RTLD_NOW);
	if (!h) {
		printf("dlopen: %s\n", dlerror());
		exit(1);
	}
	char *(*f)(const char *) = (char *(*)(const char *))dlsym(h, "plugin_alloc");
	char *p = f(s);
	printf("P %s %p %p\n", s, (void *)p, (void *)f);
	dlclose(h);
	return p;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	char *a = run(argv[1], "first");
	char *b = run(argv[2], "second");
	char *c = run(argv[1], "third");
	printf("F run %p\n", (void *)run);
	free(a);
	free(b);
	free(c);
	puts("OK");
	return 0;
}
