/* grade - the ft_malloc grading scenario, judged by minor page faults.
 *   grade 0   empty program: 1024 iterations that allocate nothing
 *   grade 1   1024 x malloc(1024), write the first byte of each, no free
 *   grade 2   the same with free() right after each malloc
 * Minor faults (mode 1 - mode 0) should stay near 256 (1 MiB of 4 KiB pages)
 * and (mode 2 - mode 0) near 0. Output is written with write(2) from a static
 * buffer, so mode 0 never calls malloc itself.
 * usage: grade MODE */
#include "bench.h"
#include <unistd.h>

int main(int argc, char **argv)
{
	int mode = argc > 1 ? atoi(argv[1]) : 0;
	uint64_t h = CK_INIT;
	for (int i = 0; i < 1024; i++) {
		if (mode == 0) {
			OPAQUE(&h);
			continue;
		}
		char *addr = (char *)malloc(1024);
		if (!addr)
			DIE("grade: malloc failed");
		addr[0] = 42;
		OPAQUE(addr);
		h = ck_add(h, (unsigned char)addr[0]);
		if (mode == 2)
			free(addr);
	}
	static char line[96];
	int n = snprintf(line, sizeof line, "grade mode=%d checksum=%016llx\n", mode, (unsigned long long)h);
	return write(1, line, (size_t)n) == n ? 0 : 1;
}
