/* with - run a command with a few environment changes, like env(1), but
 * built static so that it adds almost no page faults of its own to what GNU
 * time measures for the command (env's dynamic start-up costs ~75 faults),
 * and so that nothing of the benchmark harness itself runs under the
 * allocator being measured.
 * usage: with [-u NAME]... [NAME=VALUE]... -- COMMAND [ARG]... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int i = 1;
	for (; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "-u") && i + 1 < argc)
			unsetenv(argv[++i]);
		else if (strchr(argv[i], '=') && putenv(argv[i]) == 0)
			;
		else {
			fprintf(stderr, "with: bad argument '%s'\n", argv[i]);
			return 125;
		}
	}
	if (i + 1 >= argc) {
		fprintf(stderr, "usage: with [-u NAME]... [NAME=VALUE]... -- COMMAND [ARG]...\n");
		return 125;
	}
	execvp(argv[i + 1], argv + i + 1);
	perror(argv[i + 1]);
	return 127;
}
