/* Event numbers across threads. Thread B takes its numbers first, then thread A, whose numbers
 * are ahead; A allocates a block and B frees it. Then A allocates the same size again until it
 * gets that block back: at once when nothing is quarantined and no thread caches blocks; with
 * thread caches ("exit"), once B has exited (its cache goes back to A's arena) and A's cache
 * took the block in a refill. Prints "BLOCK 0x...", "AGAIN same" when the block came back,
 * then the dump and, after "=== log", the last 400 events. The block's events there (in number
 * order) must read malloc, free, malloc. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern void show_alloc_mem_ex(void) __attribute__((weak));
extern void show_alloc_mem_ex_cmd(const char *) __attribute__((weak));

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
/* Whose step it is: 0 B warms up, 1 A allocates, 2 B frees, 3 A allocates again, 4 done. */
static int turn;
static int b_exits;
static void *shared;

static void wait_turn(int t)
{
	pthread_mutex_lock(&m);
	while (turn != t)
		pthread_cond_wait(&c, &m);
	pthread_mutex_unlock(&m);
}

static void give_turn(int t)
{
	pthread_mutex_lock(&m);
	turn = t;
	pthread_cond_broadcast(&c);
	pthread_mutex_unlock(&m);
}

static void *thread_b(void *arg)
{
	(void)arg;
	wait_turn(0);
	for (int i = 0; i < 10; i++)
		free(malloc(100));
	give_turn(1);
	wait_turn(2);
	free(shared);
	if (b_exits)
		return NULL; /* main gives A its turn once this thread is gone */
	give_turn(3);
	wait_turn(4);
	return NULL;
}

static void *thread_a(void *arg)
{
	static void *kept[200];
	int n = 0, same = 0;
	(void)arg;
	wait_turn(1);
	void *p = malloc(40);
	shared = p;
	give_turn(2);
	wait_turn(3);
	while (n < 200 && !same) {
		kept[n] = malloc(40);
		same = kept[n++] == p;
	}
	printf("BLOCK %p\nAGAIN %s\n", p, same ? "same" : "other");
	fflush(stdout);
	show_alloc_mem_ex();
	printf("=== log\n");
	fflush(stdout);
	show_alloc_mem_ex_cmd("log 400");
	while (n > 0)
		free(kept[--n]);
	give_turn(4);
	return NULL;
}

int main(int argc, char **argv)
{
	if (!show_alloc_mem_ex || !show_alloc_mem_ex_cmd)
		return 2;
	b_exits = argc > 1 && strcmp(argv[1], "exit") == 0;
	pthread_t a, b;
	pthread_create(&b, NULL, thread_b, NULL);
	pthread_create(&a, NULL, thread_a, NULL);
	if (b_exits) {
		pthread_join(b, NULL);
		give_turn(3);
	}
	pthread_join(a, NULL);
	if (!b_exits)
		pthread_join(b, NULL);
	return 0;
}
