# dictlist.py - Python dict/list churn (run with PYTHONMALLOC=malloc so every
# object allocation reaches the allocator under test).
# usage: python3 dictlist.py N
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
h = 0
d = {}
for i in range(n):
    k = "key%d_%d" % (i % 9973, i)
    d[k] = [i, str(i * 3), (i, k)]
    if i % 3 == 0:
        d.pop("key%d_%d" % ((i // 2) % 9973, i // 2), None)
lst = sorted(d.items(), key=lambda kv: (len(kv[0]), kv[0]))
for k, v in lst[:: max(1, len(lst) // 1000)]:
    h = (h * 131 + len(k) + v[0]) % 1000000007
groups = {}
for k, v in d.items():
    groups.setdefault(k[:5], []).append(v[1])
for g in sorted(groups):
    s = ",".join(groups[g])
    h = (h * 31 + len(s)) % 1000000007
words = [w.upper() for w in " ".join(d.keys()).split("_")]
h = (h + len(words) + sum(map(len, words[:50000]))) % 1000000007
print("python n=%d keys=%d checksum=%d" % (n, len(d), h))
