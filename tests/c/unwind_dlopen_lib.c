/* A library loaded and unloaded by unwind_dlopen_dlclose.c, built in two variants
 * (-DVARIANT=1 or 2) with the same code layout but other frame sizes, so the second one,
 * loaded where the first one was, has other unwind rules at the same return addresses.
 * plugin_alloc -> inner -> strdup. */
#include <stdlib.h>
#include <string.h>
#ifndef VARIANT
#define VARIANT 1
#endif

__attribute__((noinline)) static char *inner(const char *s)
{
	char buf[1024 * VARIANT];
	strncpy(buf, s, sizeof buf - 1);
	buf[sizeof buf - 1] = 0;
	return strdup(buf);
}

char *plugin_alloc(const char *s)
{
	char *p = inner(s);
	__asm__ volatile("" ::: "memory");
	return p;
}
