/* lograte - events per second of the allocation log: T threads each run N malloc(32)+free
 * pairs (2 events each) and the wall time is measured from the first thread's start to the
 * last one's end. Not one of bench.sh's workloads: run it by hand, e.g.
 *   cc -O2 -pthread -o /tmp/lograte bench/lograte.c
 *   MALLOC_DEBUG=log=/tmp/x.log LD_PRELOAD=target/release/libft_malloc.so /tmp/lograte 2000000 1
 * usage: lograte [pairs-per-thread=2000000] [threads=1] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long n;

static void *run(void *arg)
{
	for (long i = 0; i < n; i++) {
		void *volatile p = malloc(32);
		free(p);
	}
	return arg;
}

int main(int argc, char **argv)
{
	n = argc > 1 ? atol(argv[1]) : 2000000;
	int t = argc > 2 ? atoi(argv[2]) : 1;
	if (t < 1 || t > 64)
		t = 1;
	pthread_t th[64];
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < t; i++)
		pthread_create(&th[i], NULL, run, NULL);
	for (int i = 0; i < t; i++)
		pthread_join(th[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	printf("%d thread(s): %.2f million events/s (%ld events in %.3f s)\n", t, 2.0 * (double)n * t / s / 1e6,
	       2 * n * t, s);
	return 0;
}
