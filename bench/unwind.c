/* unwind.c - cost of a call stack per frame, for scripts/bench-unwind.sh.
 * Built with -O2 -fomit-frame-pointer (code without frame pointers, as Debian's libraries).
 *
 *   unwind warm OP DEPTH CALLS   at recursion depth DEPTH, CALLS times OP
 *   unwind cold OP DEPTH         at depth DEPTH, through each of 4096 distinct functions once
 *                                (pass 1: each stack has one frame never seen before), then
 *                                through the same functions again (pass 2: all seen)
 *
 * OP: malloc  malloc(32) + free: two events, each a stack under MALLOC_DEBUG=backtrace=N
 *     glibc   glibc's backtrace(buf, 16)
 *     libgcc  _Unwind_Backtrace collecting 16 frames
 * Prints "ns_per_op=..." (warm) or "pass1_ns_per_op=... pass2_ns_per_op=..." (cold). */
#define _GNU_SOURCE
#include <execinfo.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unwind.h>

static void *volatile sink;
static volatile int frames_seen;

static void op_malloc(void)
{
	void *p = malloc(32);
	sink = p;
	free(p);
}

static void op_glibc(void)
{
	void *buf[16];
	frames_seen = backtrace(buf, 16);
}

struct collect { int n; };
static _Unwind_Reason_Code one(struct _Unwind_Context *ctx, void *arg)
{
	struct collect *c = arg;
	sink = (void *)_Unwind_GetIP(ctx);
	return ++c->n >= 16 ? _URC_END_OF_STACK : _URC_NO_REASON;
}
static void op_libgcc(void)
{
	struct collect c = { 0 };
	_Unwind_Backtrace(one, &c);
	frames_seen = c.n;
}

static void (*op)(void);

/* 4096 distinct functions, each calling op from its own call site (a return address that no
 * other function has). The volatile stores keep gcc from folding them into one. */
#define F(n) static volatile int v_##n; \
	__attribute__((noinline)) static void f_##n(void) { v_##n = 1; op(); v_##n = 2; }
#define F4(n) F(n##0) F(n##1) F(n##2) F(n##3)
#define F16(n) F4(n##0) F4(n##1) F4(n##2) F4(n##3)
#define F64(n) F16(n##0) F16(n##1) F16(n##2) F16(n##3)
#define F256(n) F64(n##0) F64(n##1) F64(n##2) F64(n##3)
#define F1024(n) F256(n##0) F256(n##1) F256(n##2) F256(n##3)
F1024(a0) F1024(a1) F1024(a2) F1024(a3)
#define P(n) f_##n,
#define P4(n) P(n##0) P(n##1) P(n##2) P(n##3)
#define P16(n) P4(n##0) P4(n##1) P4(n##2) P4(n##3)
#define P64(n) P16(n##0) P16(n##1) P16(n##2) P16(n##3)
#define P256(n) P64(n##0) P64(n##1) P64(n##2) P64(n##3)
#define P1024(n) P256(n##0) P256(n##1) P256(n##2) P256(n##3)
static void (*const table[4096])(void) = { P1024(a0) P1024(a1) P1024(a2) P1024(a3) };

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static long calls;
static double pass_ns[2];

static void bottom_warm(void)
{
	double t = now_ns();
	for (long i = 0; i < calls; i++)
		op();
	pass_ns[0] = now_ns() - t;
}

static void bottom_cold(void)
{
	for (int pass = 0; pass < 2; pass++) {
		double t = now_ns();
		for (int i = 0; i < 4096; i++)
			table[i]();
		pass_ns[pass] = now_ns() - t;
	}
}

__attribute__((noinline)) static int rec(int d, void (*bottom)(void))
{
	if (d <= 0) {
		bottom();
		return 0;
	}
	int r = rec(d - 1, bottom);
	__asm__ volatile("" ::: "memory");
	return r + 1;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: unwind warm|cold malloc|glibc|libgcc DEPTH [CALLS]\n");
		return 2;
	}
	const char *o = argv[2];
	op = !strcmp(o, "glibc") ? op_glibc : !strcmp(o, "libgcc") ? op_libgcc : op_malloc;
	int depth = atoi(argv[3]);
	op_glibc(); /* loads libgcc_s for backtrace() before any timing */
	if (!strcmp(argv[1], "warm")) {
		calls = argc > 4 ? atol(argv[4]) : 100000;
		rec(depth, bottom_warm);
		printf("warm %s depth=%d calls=%ld ns_per_op=%.1f frames=%d\n", o, depth, calls,
		       pass_ns[0] / calls, frames_seen);
	} else {
		rec(depth, bottom_cold);
		printf("cold %s depth=%d pass1_ns_per_op=%.1f pass2_ns_per_op=%.1f\n", o, depth,
		       pass_ns[0] / 4096, pass_ns[1] / 4096);
	}
	return 0;
}
