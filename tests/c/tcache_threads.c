/* 64 threads, each allocating TINY, SMALL and a few LARGE blocks filled with a pattern of their
 * address and size. Every block goes to the next thread's mailbox; each thread checks and frees
 * what it receives (cross-thread frees, into its own cache with debugging off), and churns
 * private blocks too (own-thread frees). Prints OK. */
#include <pthread.h>
#include <stdint.h>
#include "check.h"

#define THREADS 64
#define ROUNDS 40
#define PER_ROUND 64
#define BOX (ROUNDS * PER_ROUND)

struct mailbox {
    pthread_mutex_t mu;
    void *item[BOX];
    size_t size[BOX];
    int count;
};

static struct mailbox box[THREADS];
static pthread_barrier_t bar;

static unsigned char pat(void *p, size_t n, size_t i) {
    return (unsigned char)(((uintptr_t)p >> 4) ^ n ^ (i * 13));
}

static void fill(unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        p[i] = pat(p, n, i);
}

static void check(unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        CHECK(p[i] == pat(p, n, i));
}

static uint32_t next(uint32_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static size_t pick(uint32_t *s) {
    uint32_t r = next(s) % 64;
    if (r == 63)
        return 20000 + next(s) % 40000; /* LARGE */
    if (r >= 52)
        return 513 + next(s) % 15872; /* SMALL */
    return 1 + next(s) % 512; /* TINY */
}

static void drain(struct mailbox *b) {
    pthread_mutex_lock(&b->mu);
    for (int i = 0; i < b->count; i++) {
        check(b->item[i], b->size[i]);
        free(b->item[i]);
    }
    b->count = 0;
    pthread_mutex_unlock(&b->mu);
}

static void *worker(void *arg) {
    long t = (long)arg;
    uint32_t s = 0x9e3779b9u ^ (uint32_t)(t * 7919 + 1);
    struct mailbox *to = &box[(t + 1) % THREADS];
    void *own[PER_ROUND];
    size_t own_n[PER_ROUND];
    pthread_barrier_wait(&bar);
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < PER_ROUND; i++) {
            size_t n = pick(&s);
            unsigned char *p = malloc(n);
            CHECK(p != NULL);
            fill(p, n);
            pthread_mutex_lock(&to->mu);
            to->item[to->count] = p;
            to->size[to->count] = n;
            to->count++;
            pthread_mutex_unlock(&to->mu);
            own_n[i] = pick(&s);
            own[i] = malloc(own_n[i]);
            CHECK(own[i] != NULL);
            fill(own[i], own_n[i]);
        }
        for (int i = PER_ROUND - 1; i >= 0; i--) {
            check(own[i], own_n[i]);
            free(own[i]);
        }
        drain(&box[t]);
    }
    pthread_barrier_wait(&bar);
    drain(&box[t]);
    return NULL;
}

int main(void) {
    pthread_t th[THREADS];
    CHECK(pthread_barrier_init(&bar, NULL, THREADS) == 0);
    for (int i = 0; i < THREADS; i++)
        pthread_mutex_init(&box[i].mu, NULL);
    for (long i = 0; i < THREADS; i++)
        CHECK(pthread_create(&th[i], NULL, worker, (void *)i) == 0);
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_join(th[i], NULL) == 0);
    printf("OK\n");
    return 0;
}
