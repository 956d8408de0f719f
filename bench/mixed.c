/* mixed - mixed sizes: a live set of 4096 blocks whose sizes are drawn from a
 * skewed distribution: 70% tiny (8..256 B), 25% small (256 B..8 KiB),
 * 5% medium (8..256 KiB). Each step replaces one random block; the head and
 * tail of every block are written and checked. Some blocks are calloc'ed and
 * must read back as zero.
 * usage: mixed [steps=2000000] */
#include "bench.h"

#define LIVE 4096

struct blk { unsigned char *p; size_t n; };
static struct blk live[LIVE];

static size_t pick_size(rng_t *r)
{
	uint64_t c = rng_below(r, 100);
	if (c < 70)
		return 8 + rng_below(r, 249);
	if (c < 95)
		return 256 + rng_below(r, 8192 - 256);
	return 8192 + rng_below(r, 256 * 1024 - 8192);
}

static void fill(struct blk *b, unsigned tag)
{
	size_t m = b->n < 16 ? b->n : 16;
	memset(b->p, (int)(tag & 0xff), m);
	memset(b->p + b->n - m, (int)(tag & 0xff), m);
}

int main(int argc, char **argv)
{
	long steps = arg_long(argc, argv, 1, 2000000);
	rng_t r = rng_seed(2);
	uint64_t h = CK_INIT;
	for (long i = 0; i < steps; i++) {
		unsigned k = (unsigned)rng_below(&r, LIVE);
		struct blk *b = &live[k];
		if (b->p) {
			unsigned char tag = (unsigned char)(k * 7 + b->n);
			if (b->p[0] != tag || b->p[b->n - 1] != tag)
				DIE("mixed: block %u (%zu bytes) was overwritten", k, b->n);
			h = ck_add(h, b->n ^ b->p[b->n / 2]);
			free(b->p);
		}
		b->n = pick_size(&r);
		if ((i & 15) == 0) {
			b->p = calloc(1, b->n);
			if (!b->p)
				DIE("mixed: calloc(%zu) failed", b->n);
			if (b->p[b->n / 2] != 0 || b->p[b->n - 1] != 0)
				DIE("mixed: calloc(%zu) memory not zeroed", b->n);
		} else {
			b->p = xmalloc(b->n);
		}
		b->p[b->n / 2] = (unsigned char)i;
		fill(b, (unsigned char)(k * 7 + b->n));
	}
	for (unsigned k = 0; k < LIVE; k++)
		if (live[k].p) {
			h = ck_add(h, live[k].n);
			free(live[k].p);
		}
	printf("mixed steps=%ld checksum=%016llx\n", steps, (unsigned long long)h);
	return 0;
}
