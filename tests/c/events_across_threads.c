/* Event numbers across threads. Thread B takes its numbers first, then thread A, whose numbers
 * are ahead; A allocates a block, B frees it, A allocates the same size again (the slot comes
 * back when nothing is quarantined) and dumps the heap. Prints "BLOCK 0x..." and whether the
 * second allocation got the same block ("AGAIN same"). The block's events in the dump's list
 * (in number order) must read malloc, free, malloc. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

extern void show_alloc_mem_ex(void) __attribute__((weak));

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
/* Whose step it is: 0 B warms up, 1 A allocates, 2 B frees, 3 A allocates again, 4 done. */
static int turn;
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
	give_turn(3);
	wait_turn(4);
	return NULL;
}

static void *thread_a(void *arg)
{
	(void)arg;
	wait_turn(1);
	void *p = malloc(40);
	shared = p;
	give_turn(2);
	wait_turn(3);
	void *q = malloc(40);
	printf("BLOCK %p\nAGAIN %s\n", p, q == p ? "same" : "other");
	fflush(stdout);
	show_alloc_mem_ex();
	free(q);
	give_turn(4);
	return NULL;
}

int main(void)
{
	if (!show_alloc_mem_ex)
		return 2;
	pthread_t a, b;
	pthread_create(&b, NULL, thread_b, NULL);
	pthread_create(&a, NULL, thread_a, NULL);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	return 0;
}
