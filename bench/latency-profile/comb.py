import json, sys, statistics as st
files = sys.argv[1:]
res = {}
pairs = {}
for f in files:
    d = json.load(open(f))
    for k, v in d.items(): res.setdefault(k, []).extend(v)
ks = list(res)
print("runs per arm:", len(res['plain']))
for k in ks:
    out = [k]
    for fld in ("p50_us", "p99_us", "mean_us"):
        xs = sorted(x[fld] for x in res[k]); n = len(xs)
        out.append("%s %.1f [q1 %.1f q3 %.1f; min %.1f max %.1f]" % (fld, st.median(xs), xs[n//4], xs[(3*n)//4], xs[0], xs[-1]))
    print(" | ".join(out))
print("paired per-round p50 difference vs base2 (median [q1,q3]):")
for k in ks:
    ds = sorted(a["p50_us"] - b["p50_us"] for a, b in zip(res[k], res["base2"])); n = len(ds)
    print("  %-10s %+.1f [%+.1f, %+.1f]" % (k, st.median(ds), ds[n//4], ds[(3*n)//4]))
