/* gen - deterministic input generator for the real-program workloads.
 *   gen lines N   N text lines of 2..9 pseudo-words and numbers (for sort)
 *   gen csrc N    a C translation unit of N functions (for gcc -O2)
 *   gen sql N     an SQL script inserting N rows one statement at a time,
 *                 indexing, updating and querying them; its last line of
 *                 output is "checksum=..." (for sqlite3)
 * Output goes to stdout. */
#include "bench.h"

static const char *syl[] = { "ka", "lo", "mi", "ne", "ru", "ta", "zo", "pe", "si", "vu",
			     "gra", "tel", "bon", "qui", "dar", "fen", "hol", "jix", "wen", "yur" };
#define NSYL (sizeof syl / sizeof syl[0])

static void word(rng_t *r, char *buf)
{
	int n = 1 + (int)rng_below(r, 4);
	buf[0] = 0;
	for (int i = 0; i < n; i++)
		strcat(buf, syl[rng_below(r, NSYL)]);
}

static void lines(long n)
{
	rng_t r = rng_seed(10);
	char w[64];
	for (long i = 0; i < n; i++) {
		int nw = 2 + (int)rng_below(&r, 8);
		for (int j = 0; j < nw; j++) {
			if (rng_below(&r, 5) == 0)
				printf("%s%llu", j ? " " : "", (unsigned long long)rng_below(&r, 1000000));
			else {
				word(&r, w);
				printf("%s%s", j ? " " : "", w);
			}
		}
		putchar('\n');
	}
}

static void csrc(long n)
{
	rng_t r = rng_seed(11);
	printf("#include <stdio.h>\n#include <string.h>\n#include <stdlib.h>\n\n");
	printf("struct rec { int id; double w; char name[24]; struct rec *next; };\n\n");
	for (long f = 0; f < n; f++) {
		int k = 2 + (int)rng_below(&r, 6);
		printf("static int table_%ld[%d] = {", f, k);
		for (int i = 0; i < k; i++)
			printf("%s%d", i ? ", " : " ", (int)rng_below(&r, 1000));
		printf(" };\n");
		printf("double func_%ld(struct rec *head, int n, const char *s)\n{\n", f);
		printf("\tdouble acc = %d.5;\n\tint i, j;\n", (int)rng_below(&r, 100));
		printf("\tfor (i = 0; i < n; i++) {\n");
		printf("\t\tswitch ((i + (int)strlen(s)) %% %d) {\n", k + 1);
		for (int c = 0; c < k; c++)
			printf("\t\tcase %d: acc += table_%ld[%d] * %d.25; break;\n", c, f, c,
			       (int)rng_below(&r, 50));
		printf("\t\tdefault: acc -= i * 0.5; break;\n\t\t}\n");
		printf("\t\tfor (j = 0; j < %d; j++)\n\t\t\tacc = acc * 0.999 + j;\n", 3 + (int)rng_below(&r, 20));
		printf("\t}\n");
		printf("\tfor (struct rec *p = head; p; p = p->next)\n");
		printf("\t\tif (p->id %% %d == 0 && strcmp(p->name, \"%s%ld\") != 0)\n", 2 + (int)rng_below(&r, 9), syl[f % NSYL], f);
		printf("\t\t\tacc += p->w;\n");
		if (f > 0)
			printf("\tif (n > 1)\n\t\tacc += func_%ld(head, n / 2, s + 1);\n", (long)rng_below(&r, (uint64_t)f));
		printf("\treturn acc;\n}\n\n");
	}
	printf("int main(int argc, char **argv)\n{\n\tstruct rec r = { 1, 2.0, \"x\", NULL };\n\tdouble t = 0;\n");
	for (long f = 0; f < n; f += 1 + n / 50)
		printf("\tt += func_%ld(&r, argc, argv[0]);\n", f);
	printf("\tprintf(\"%%f\\n\", t);\n\treturn 0;\n}\n");
}

static void sql(long n)
{
	rng_t r = rng_seed(12);
	char w[64], v[64];
	printf("PRAGMA journal_mode=MEMORY;\nPRAGMA synchronous=OFF;\n");
	printf("CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT, tag TEXT, qty INTEGER, price REAL, note TEXT);\n");
	printf("BEGIN;\n");
	for (long i = 0; i < n; i++) {
		word(&r, w);
		word(&r, v);
		printf("INSERT INTO item(name, tag, qty, price, note) VALUES('%s%ld', '%s', %llu, %llu.%02llu, '%s %s %s');\n",
		       w, i, v, (unsigned long long)rng_below(&r, 500), (unsigned long long)rng_below(&r, 1000),
		       (unsigned long long)rng_below(&r, 100), v, w, syl[i % NSYL]);
	}
	printf("COMMIT;\n");
	printf("CREATE INDEX item_tag ON item(tag, qty);\n");
	printf("UPDATE item SET qty = qty + 1 WHERE tag LIKE 'ka%%';\n");
	printf("DELETE FROM item WHERE qty %% 17 = 3;\n");
	printf("CREATE TABLE summary AS SELECT tag, count(*) AS c, sum(qty) AS q, round(sum(price), 2) AS p FROM item GROUP BY tag;\n");
	printf("SELECT 'rows=' || count(*) FROM item;\n");
	printf("SELECT 'checksum=' || printf('%%d-%%d-%%.2f-%%d', count(*), sum(q), sum(p), "
	       "(SELECT sum(length(group_concat_v)) FROM (SELECT group_concat(name) AS group_concat_v FROM item GROUP BY tag))) FROM summary;\n");
}

int main(int argc, char **argv)
{
	if (argc != 3)
		DIE("usage: gen lines|csrc|sql N");
	long n = arg_long(argc, argv, 2, 1000);
	if (!strcmp(argv[1], "lines"))
		lines(n);
	else if (!strcmp(argv[1], "csrc"))
		csrc(n);
	else if (!strcmp(argv[1], "sql"))
		sql(n);
	else
		DIE("gen: unknown kind %s", argv[1]);
	return ferror(stdout) ? 1 : 0;
}
