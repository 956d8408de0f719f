/* bench.h - helpers shared by the benchmark workloads in this folder.
 *
 * Every workload is deterministic: it draws from a xorshift128+ generator with
 * a fixed seed, takes its scale from argv[1] (a plain count), and ends with a
 * single line "NAME ... checksum=HEX" that must be identical under every
 * allocator. A differing checksum means some allocator handed back memory
 * that did not keep what was written to it. */
#ifndef FTM_BENCH_H
#define FTM_BENCH_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { uint64_t a, b; } rng_t;

static inline rng_t rng_seed(uint64_t seed)
{
	rng_t r = { seed ^ 0x243f6a8885a308d3ULL, (seed * 0x9e3779b97f4a7c15ULL) | 1 };
	return r;
}

static inline uint64_t rng_u64(rng_t *r)
{
	uint64_t x = r->a, y = r->b;
	r->a = y;
	x ^= x << 23;
	r->b = x ^ y ^ (x >> 17) ^ (y >> 26);
	return r->b + y;
}

/* in [0, n) */
static inline uint64_t rng_below(rng_t *r, uint64_t n) { return rng_u64(r) % n; }

/* FNV-1a style running hash of 64-bit values */
static inline uint64_t ck_add(uint64_t h, uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		h ^= (v >> (8 * i)) & 0xff;
		h *= 0x100000001b3ULL;
	}
	return h;
}
#define CK_INIT 0xcbf29ce484222325ULL

static inline long arg_long(int argc, char **argv, int i, long dflt)
{
	if (argc <= i)
		return dflt;
	long v = strtol(argv[i], NULL, 10);
	return v > 0 ? v : dflt;
}

#define DIE(...) do { fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); exit(3); } while (0)

static inline void *xmalloc(size_t n)
{
	void *p = malloc(n);
	if (!p)
		DIE("malloc(%zu) failed", n);
	return p;
}

/* stop the compiler from removing a malloc/free pair */
#define OPAQUE(p) __asm__ volatile("" : : "r"(p) : "memory")
#endif
