/* 4 producer threads allocate blocks of every class and fill them with a pattern derived from
 * their address and size; 4 consumer threads receive them through queues, check the pattern,
 * sometimes realloc them, and free them. Every thread also churns private blocks. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include "check.h"

#define PAIRS 4
#define PER_PRODUCER 60000
#define QCAP 256

struct queue {
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    void *item[QCAP];
    size_t size[QCAP];
    int head, count;
};

static struct queue queues[PAIRS];

static unsigned char pat(uintptr_t key, size_t n, size_t i) {
    return (unsigned char)((key >> 4) ^ n ^ (i * 7));
}

/* Pattern positions (a function of n only): the first bytes up to 512, then every 64th byte, then
 * every byte of the last ~512. Sets (or checks) those below `limit` to the pattern of the block
 * that was at address `key` with size n. */
static void walk(unsigned char *p, uintptr_t key, size_t n, size_t limit, int set) {
    size_t i = 0;
    while (i < n && i < limit) {
        if (set)
            p[i] = pat(key, n, i);
        else
            CHECK(p[i] == pat(key, n, i));
        i += (i >= 512 && i + 512 < n) ? 64 : 1;
    }
}

static void fill(unsigned char *p, size_t n) { walk(p, (uintptr_t)p, n, n, 1); }
static void check(unsigned char *p, size_t n) { walk(p, (uintptr_t)p, n, n, 0); }

static uint32_t next(uint32_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static size_t pick_size(uint32_t *s) {
    uint32_t r = next(s);
    switch (r % 16) {
    case 15: return 32769 + next(s) % 200000; /* LARGE */
    case 13: case 14: return 513 + next(s) % 32256; /* SMALL */
    default: return next(s) % 513; /* TINY */
    }
}

static void push(struct queue *q, void *p, size_t n) {
    pthread_mutex_lock(&q->mu);
    while (q->count == QCAP)
        pthread_cond_wait(&q->not_full, &q->mu);
    int slot = (q->head + q->count) % QCAP;
    q->item[slot] = p;
    q->size[slot] = n;
    q->count++;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
}

static void *pop(struct queue *q, size_t *n) {
    pthread_mutex_lock(&q->mu);
    while (q->count == 0)
        pthread_cond_wait(&q->not_empty, &q->mu);
    void *p = q->item[q->head];
    *n = q->size[q->head];
    q->head = (q->head + 1) % QCAP;
    q->count--;
    pthread_cond_signal(&q->not_full);
    pthread_mutex_unlock(&q->mu);
    return p;
}

static void *producer(void *arg) {
    int id = (int)(intptr_t)arg;
    uint32_t seed = 0x9E3779B9u * (id + 1);
    void *priv[16] = {0};
    size_t privn[16] = {0};
    for (int i = 0; i < PER_PRODUCER; i++) {
        size_t n = pick_size(&seed);
        unsigned char *p = malloc(n);
        CHECK(p != NULL);
        fill(p, n);
        push(&queues[id], p, n);
        /* Private churn. */
        int k = next(&seed) % 16;
        if (priv[k]) {
            check(priv[k], privn[k]);
            free(priv[k]);
        }
        privn[k] = next(&seed) % 2000;
        priv[k] = malloc(privn[k]);
        CHECK(priv[k] != NULL);
        fill(priv[k], privn[k]);
    }
    push(&queues[id], NULL, 0);
    for (int k = 0; k < 16; k++) {
        if (priv[k])
            check(priv[k], privn[k]);
        free(priv[k]);
    }
    return NULL;
}

static void *consumer(void *arg) {
    int id = (int)(intptr_t)arg;
    uint32_t seed = 0x85EBCA6Bu * (id + 1);
    for (;;) {
        size_t n;
        unsigned char *p = pop(&queues[id], &n);
        if (!p)
            break;
        check(p, n);
        if (next(&seed) % 4 == 0) {
            size_t m = pick_size(&seed) + 1;
            uintptr_t old = (uintptr_t)p;
            unsigned char *q = realloc(p, m);
            CHECK(q != NULL);
            walk(q, old, n, n < m ? n : m, 0);
            p = q;
            n = m;
            fill(p, n);
            check(p, n);
        }
        free(p);
    }
    return NULL;
}

int main(void) {
    pthread_t prod[PAIRS], cons[PAIRS];
    for (int i = 0; i < PAIRS; i++) {
        pthread_mutex_init(&queues[i].mu, NULL);
        pthread_cond_init(&queues[i].not_empty, NULL);
        pthread_cond_init(&queues[i].not_full, NULL);
    }
    for (int i = 0; i < PAIRS; i++) {
        CHECK(pthread_create(&prod[i], NULL, producer, (void *)(intptr_t)i) == 0);
        CHECK(pthread_create(&cons[i], NULL, consumer, (void *)(intptr_t)i) == 0);
    }
    for (int i = 0; i < PAIRS; i++) {
        pthread_join(prod[i], NULL);
        pthread_join(cons[i], NULL);
    }
    printf("OK\n");
    return 0;
}
