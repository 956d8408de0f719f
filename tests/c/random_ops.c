/* Long seeded random sequences of malloc, calloc, realloc, reallocarray, memalign,
 * posix_memalign, aligned_alloc and free over log-distributed sizes 0 .. ~300 KiB.
 * Every block carries a pattern derived from its address and size, checked before it is freed
 * or resized (calloc memory is checked for zeros first). With several threads, some blocks are
 * handed to another thread's inbox and freed (or resized) there.
 * Results of malloc, calloc and realloc must be 16-byte aligned, or ALIGN-byte aligned when a
 * fourth argument is given (1 for the guard modes, whose blocks end at their guard page).
 *   usage: random_ops SEED OPS_PER_THREAD THREADS [ALIGN] */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include "check.h"

static uintptr_t min_align = 16;

#define SLOTS 1024
#define INBOX 512
#define MAX_THREADS 16

struct block {
    unsigned char *p;
    size_t n;
};

struct inbox {
    pthread_mutex_t mu;
    struct block b[INBOX];
    int count;
};

static struct inbox inboxes[MAX_THREADS];
static int nthreads;
static long ops_per_thread;
static uint64_t base_seed;

static uint64_t rnd(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Log-distributed: 2^U with U uniform in [0, 18.2), minus 1: 0 .. ~300 KiB. */
static size_t rand_size(uint64_t *s) {
    double u = (double)(rnd(s) >> 11) / 9007199254740992.0 * 18.2;
    size_t hi = (size_t)1 << (int)u;
    return hi - 1 + rnd(s) % hi;
}

/* Pattern positions, a function of n only: every byte up to 128, every 128th byte, every byte of
 * the last ~128. Sets (or checks) those below `limit` to the pattern of the block that was at
 * address `key` with size n. */
static void walk(unsigned char *p, uintptr_t key, size_t n, size_t limit, int set) {
    const unsigned char k = (unsigned char)((key >> 4) ^ (n * 13));
    if (limit > n)
        limit = n;
    for (size_t i = 0; i < limit; i += (i >= 128 && i + 128 < n) ? 128 : 1) {
        unsigned char want = k ^ (unsigned char)(i * 7) ^ (unsigned char)(i >> 8);
        if (set) {
            p[i] = want;
        } else if (p[i] != want) {
            fprintf(stderr, "corrupt block %p size %zu at offset %zu: %#x, expected %#x\n",
                    (void *)p, n, i, p[i], want);
            exit(1);
        }
    }
}

static void zero_check(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i += (i >= 128 && i + 128 < n) ? 128 : 1)
        CHECK(p[i] == 0);
}

static void fill(struct block *b) { walk(b->p, (uintptr_t)b->p, b->n, b->n, 1); }
static void check(const struct block *b) { walk(b->p, (uintptr_t)b->p, b->n, b->n, 0); }

static void new_block(struct block *b, uint64_t *s) {
    size_t n = rand_size(s);
    size_t align = (size_t)16 << rnd(s) % 9; /* 16 .. 4096 */
    if (rnd(s) % 64 == 0)
        align = 65536;
    void *p = NULL;
    int zeroed = 0;
    switch (rnd(s) % 10) {
    case 0:
        p = calloc(1, n);
        zeroed = 1;
        break;
    case 1:
        if (n >= 8) {
            p = calloc(n / 8, 8);
            n = n / 8 * 8;
        } else {
            p = calloc(n, 1);
        }
        zeroed = 1;
        break;
    case 2:
        p = memalign(align, n);
        CHECK((uintptr_t)p % align == 0);
        break;
    case 3:
        CHECK(posix_memalign(&p, align, n) == 0);
        CHECK((uintptr_t)p % align == 0);
        break;
    case 4:
        p = aligned_alloc(align, n);
        CHECK((uintptr_t)p % align == 0);
        break;
    case 5:
        p = realloc(NULL, n);
        break;
    default:
        p = malloc(n);
        break;
    }
    CHECK(p != NULL);
    CHECK((uintptr_t)p % min_align == 0);
    CHECK(malloc_usable_size(p) >= n);
    if (zeroed)
        zero_check(p, n);
    b->p = p;
    b->n = n;
    fill(b);
}

static void resize(struct block *b, uint64_t *s) {
    check(b);
    size_t m = rand_size(s);
    uintptr_t old = (uintptr_t)b->p;
    unsigned char *q;
    if (rnd(s) % 4 == 0) {
        q = reallocarray(b->p, m, 1);
    } else if (rnd(s) % 32 == 0) {
        CHECK(realloc(b->p, 0) == NULL); /* frees */
        b->p = NULL;
        return;
    } else {
        q = realloc(b->p, m);
    }
    if (m == 0 && q == NULL) { /* reallocarray(p, 0, 1) may free like realloc(p, 0) */
        b->p = NULL;
        return;
    }
    CHECK(q != NULL);
    CHECK((uintptr_t)q % min_align == 0);
    walk(q, old, b->n, b->n < m ? b->n : m, 0);
    b->p = q;
    b->n = m;
    fill(b);
}

static void drain(int id, uint64_t *s) {
    struct block got[INBOX];
    pthread_mutex_lock(&inboxes[id].mu);
    int n = inboxes[id].count;
    memcpy(got, inboxes[id].b, n * sizeof got[0]);
    inboxes[id].count = 0;
    pthread_mutex_unlock(&inboxes[id].mu);
    for (int i = 0; i < n; i++) {
        if (s && rnd(s) % 4 == 0) {
            resize(&got[i], s);
            if (got[i].p)
                check(&got[i]);
        } else {
            check(&got[i]);
        }
        free(got[i].p);
    }
}

/* Hands the block to another thread; false when its inbox is full. */
static int give(int to, struct block *b) {
    int ok = 0;
    pthread_mutex_lock(&inboxes[to].mu);
    if (inboxes[to].count < INBOX) {
        inboxes[to].b[inboxes[to].count++] = *b;
        ok = 1;
    }
    pthread_mutex_unlock(&inboxes[to].mu);
    return ok;
}

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg;
    uint64_t s = base_seed * 1000003 + id;
    static __thread struct block slot[SLOTS];
    for (long op = 0; op < ops_per_thread; op++) {
        struct block *b = &slot[rnd(&s) % SLOTS];
        if (!b->p) {
            new_block(b, &s);
            continue;
        }
        uint64_t r = rnd(&s) % 100;
        if (r < 50) {
            check(b);
            if (nthreads > 1 && r < 3 && give((id + 1 + rnd(&s) % (nthreads - 1)) % nthreads, b)) {
                b->p = NULL;
                continue;
            }
            free(b->p);
            b->p = NULL;
        } else {
            resize(b, &s);
        }
        if (nthreads > 1 && op % 64 == 0)
            drain(id, &s);
    }
    for (int i = 0; i < SLOTS; i++) {
        if (slot[i].p) {
            check(&slot[i]);
            free(slot[i].p);
            slot[i].p = NULL;
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    CHECK(argc == 4 || argc == 5);
    if (argc == 5)
        min_align = strtoul(argv[4], NULL, 10);
    CHECK(min_align > 0);
    base_seed = strtoull(argv[1], NULL, 10);
    ops_per_thread = strtol(argv[2], NULL, 10);
    nthreads = atoi(argv[3]);
    CHECK(nthreads >= 1 && nthreads <= MAX_THREADS);
    for (int i = 0; i < nthreads; i++)
        pthread_mutex_init(&inboxes[i].mu, NULL);
    if (nthreads == 1) {
        worker((void *)0);
    } else {
        pthread_t t[MAX_THREADS];
        for (int i = 0; i < nthreads; i++)
            CHECK(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i) == 0);
        for (int i = 0; i < nthreads; i++)
            CHECK(pthread_join(t[i], NULL) == 0);
        for (int i = 0; i < nthreads; i++)
            drain(i, NULL);
    }
    printf("OK\n");
    return 0;
}
