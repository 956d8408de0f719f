/* realloc - realloc growth: 64 string builders, each grown by realloc() one
 * random 1..48-byte piece at a time (no spare capacity, the naive pattern) up
 * to a random target of 1..128 KiB; then its whole content is checked
 * against the generator, it is freed and started again. Every 8th builder
 * shrinks by half once on the way.
 * usage: realloc [appends=3000000] */
#include "bench.h"

#define NB 64

struct sb { unsigned char *p; size_t len, target; uint64_t hseed; int shrunk; };

int main(int argc, char **argv)
{
	long appends = arg_long(argc, argv, 1, 3000000);
	rng_t r = rng_seed(4);
	struct sb b[NB];
	memset(b, 0, sizeof b);
	uint64_t h = CK_INIT;
	for (int k = 0; k < NB; k++)
		b[k].target = 1024 + rng_below(&r, 127 * 1024);
	for (long i = 0; i < appends; i++) {
		unsigned k = (unsigned)rng_below(&r, NB);
		struct sb *s = &b[k];
		size_t add = 1 + rng_below(&r, 48);
		unsigned char *q = realloc(s->p, s->len + add);
		if (!q)
			DIE("realloc: realloc(%zu) failed", s->len + add);
		s->p = q;
		for (size_t j = 0; j < add; j++)
			q[s->len + j] = (unsigned char)((s->len + j) * 131 + k);
		s->len += add;
		if (!s->shrunk && (k & 7) == 0 && s->len > s->target / 2) {
			s->len /= 2;
			s->shrunk = 1;
			q = realloc(s->p, s->len);
			if (!q)
				DIE("realloc: shrink failed");
			s->p = q;
		}
		if (s->len >= s->target) {
			for (size_t j = 0; j < s->len; j++)
				if (s->p[j] != (unsigned char)(j * 131 + k))
					DIE("realloc: builder %u byte %zu lost its content", k, j);
			h = ck_add(h, s->len);
			free(s->p);
			s->p = NULL;
			s->len = 0;
			s->shrunk = 0;
			s->target = 1024 + rng_below(&r, 127 * 1024);
		}
	}
	for (int k = 0; k < NB; k++) {
		h = ck_add(h, b[k].len);
		free(b[k].p);
	}
	printf("realloc appends=%ld checksum=%016llx\n", appends, (unsigned long long)h);
	return 0;
}
