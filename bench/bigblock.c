/* bigblock - big-block alloc/free churn: a live set of 12 blocks of
 * 64 KiB..4 MiB; each step frees one and allocates a new one, writing one
 * byte per 4 KiB page of a quarter of it and the last byte (so the cost of
 * fresh pages counts, as it does for real programs).
 * usage: bigblock [steps=10000] */
#include "bench.h"

#define LIVE 12

int main(int argc, char **argv)
{
	long steps = arg_long(argc, argv, 1, 10000);
	rng_t r = rng_seed(3);
	unsigned char *p[LIVE] = { 0 };
	size_t n[LIVE] = { 0 };
	uint64_t h = CK_INIT;
	for (long i = 0; i < steps; i++) {
		unsigned k = (unsigned)rng_below(&r, LIVE);
		if (p[k]) {
			if (p[k][0] != (unsigned char)(n[k] >> 12) || p[k][n[k] - 1] != (unsigned char)k)
				DIE("bigblock: block %u (%zu bytes) was overwritten", k, n[k]);
			h = ck_add(h, n[k] ^ p[k][n[k] / 8]);
			free(p[k]);
		}
		unsigned shift = 16 + (unsigned)rng_below(&r, 7); /* 64 KiB .. 4 MiB */
		n[k] = ((size_t)1 << shift) + rng_below(&r, (uint64_t)1 << shift);
		p[k] = xmalloc(n[k]);
		for (size_t off = 0; off < n[k] / 4; off += 4096)
			p[k][off] = (unsigned char)(off >> 12);
		p[k][0] = (unsigned char)(n[k] >> 12);
		p[k][n[k] / 8] = (unsigned char)i;
		p[k][n[k] - 1] = (unsigned char)k;
	}
	for (unsigned k = 0; k < LIVE; k++)
		free(p[k]);
	printf("bigblock steps=%ld checksum=%016llx\n", steps, (unsigned long long)h);
	return 0;
}
