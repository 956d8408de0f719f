/* churn - tiny-block churn: malloc/free of 1..96-byte blocks.
 * A table of 16384 slots; each step picks a slot at random and frees what is
 * there (after checking the fill pattern) or allocates a new block and fills
 * it. Every 64th step also makes a short burst of 8 blocks freed in LIFO
 * order, the pattern of temporary strings.
 * usage: churn [steps=10000000] */
#include "bench.h"

#define NSLOT 16384

static unsigned char *slot[NSLOT];
static unsigned char slen[NSLOT];

int main(int argc, char **argv)
{
	long steps = arg_long(argc, argv, 1, 10000000);
	rng_t r = rng_seed(1);
	uint64_t h = CK_INIT;
	for (long i = 0; i < steps; i++) {
		uint64_t x = rng_u64(&r);
		unsigned k = (unsigned)(x % NSLOT);
		unsigned char *p = slot[k];
		if (p) {
			unsigned n = slen[k];
			unsigned char pat = (unsigned char)(k ^ n);
			if (p[0] != pat || p[n - 1] != pat)
				DIE("churn: block in slot %u was overwritten", k);
			h = ck_add(h, p[n / 2] ^ n);
			free(p);
			slot[k] = NULL;
		} else {
			unsigned n = 1 + (unsigned)((x >> 40) % 96);
			p = xmalloc(n);
			memset(p, (unsigned char)(k ^ n), n);
			slot[k] = p;
			slen[k] = (unsigned char)n;
		}
		if ((i & 63) == 0) {
			char *tmp[8];
			for (int j = 0; j < 8; j++) {
				tmp[j] = xmalloc(8 + 4 * (size_t)j);
				tmp[j][0] = (char)j;
			}
			for (int j = 7; j >= 0; j--) {
				h = ck_add(h, (uint64_t)tmp[j][0]);
				free(tmp[j]);
			}
		}
	}
	for (unsigned k = 0; k < NSLOT; k++)
		if (slot[k]) {
			h = ck_add(h, slot[k][0]);
			free(slot[k]);
		}
	printf("churn steps=%ld checksum=%016llx\n", steps, (unsigned long long)h);
	return 0;
}
