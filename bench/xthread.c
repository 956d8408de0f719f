/* xthread - cross-thread frees. NT threads stand in a ring; in every round
 * each thread allocates BATCH blocks of 16..2048 B, stamps them with its id
 * and a sequence number, and hands them to the next thread, which checks the
 * stamps and frees them in the following round. Each thread also does a
 * little local malloc/free of its own. Rounds are separated by a barrier.
 * usage: xthread [rounds=1000] [threads=4] */
#include "bench.h"
#include <pthread.h>

#define BATCH 1000
#define MAXT 16

struct stamp { uint32_t owner, size; uint64_t seq; };

static long rounds;
static int nt;
static pthread_barrier_t bar;
static void *mail[MAXT][2][BATCH]; /* [receiver][round parity][i] */
static uint64_t result[MAXT];

static void *worker(void *arg)
{
	int id = (int)(intptr_t)arg, to = (id + 1) % nt;
	rng_t r = rng_seed(100 + (uint64_t)id);
	uint64_t h = CK_INIT, seq = 0;
	for (long rd = 0; rd < rounds; rd++) {
		int par = (int)(rd & 1);
		/* produce for the next thread */
		for (int i = 0; i < BATCH; i++) {
			uint32_t n = 16 + (uint32_t)rng_below(&r, 2033);
			unsigned char *p = xmalloc(n);
			struct stamp s = { (uint32_t)id, n, seq++ };
			memcpy(p, &s, sizeof s);
			p[n - 1] = (unsigned char)s.seq;
			mail[to][par][i] = p;
		}
		/* local temporaries */
		for (int i = 0; i < 64; i++) {
			char *t = xmalloc(32 + (size_t)i);
			t[0] = (char)i;
			OPAQUE(t);
			free(t);
		}
		pthread_barrier_wait(&bar);
		/* consume what the previous thread sent this round */
		for (int i = 0; i < BATCH; i++) {
			unsigned char *p = mail[id][par][i];
			struct stamp s;
			memcpy(&s, p, sizeof s);
			if (s.owner != (uint32_t)((id + nt - 1) % nt) || p[s.size - 1] != (unsigned char)s.seq)
				DIE("xthread: block from thread %u was overwritten", s.owner);
			h = ck_add(h, s.seq ^ s.size);
			free(p);
		}
		pthread_barrier_wait(&bar);
	}
	result[id] = h;
	return NULL;
}

int main(int argc, char **argv)
{
	rounds = arg_long(argc, argv, 1, 1000);
	nt = (int)arg_long(argc, argv, 2, 4);
	if (nt < 2 || nt > MAXT)
		DIE("xthread: threads must be 2..%d", MAXT);
	pthread_t th[MAXT];
	pthread_barrier_init(&bar, NULL, (unsigned)nt);
	for (int i = 0; i < nt; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i))
			DIE("xthread: pthread_create failed");
	uint64_t h = CK_INIT;
	for (int i = 0; i < nt; i++) {
		pthread_join(th[i], NULL);
		h = ck_add(h, result[i]);
	}
	printf("xthread rounds=%ld threads=%d checksum=%016llx\n", rounds, nt, (unsigned long long)h);
	return 0;
}
