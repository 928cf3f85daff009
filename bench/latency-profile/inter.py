import os
import json, random, subprocess, sys, os, statistics as st
arms = json.loads(sys.argv[1]); rounds = int(sys.argv[2]); n = sys.argv[3]
res = {k: [] for k in arms}
print(open('/proc/loadavg').read().strip(), file=sys.stderr)
for r in range(rounds):
    ks = list(arms); random.shuffle(ks)
    for k in ks:
        out = subprocess.run([os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "build", "bench", "pingpong"), "127.0.0.1", str(arms[k]), n, "64"],
                             capture_output=True, text=True, check=True).stdout
        res[k].append(json.loads(out))
print(open('/proc/loadavg').read().strip(), file=sys.stderr)
json.dump(res, open(sys.argv[4], "w"))
for k, v in res.items():
    line = [k]
    for f in ("p50_us", "p99_us"):
        xs = sorted(x[f] for x in v)
        line.append("%s median %.1f [min %.1f, q1 %.1f, q3 %.1f, max %.1f]" % (f, st.median(xs), xs[0], xs[len(xs)//4], xs[(3*len(xs))//4], xs[-1]))
    print(" | ".join(line))
