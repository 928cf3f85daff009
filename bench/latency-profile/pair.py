#!/usr/bin/python3
# Start echod + terminate + originate fedgate (userspace, 1 worker). Usage: pair.py FEDGATE TAG; env FEDGATE_* knobs pass through (prototypes.patch).
import json, os, subprocess, sys, time
WT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository
sys.path.insert(0, os.path.join(WT, "tests"))
from pki import make_pki
TAG = sys.argv[2]
wd = "/tmp/prof/run-" + TAG; os.makedirs(wd, exist_ok=True)
FG = sys.argv[1] if len(sys.argv) > 1 else os.path.join(WT, "build/fedgate")
pki = make_pki(os.path.join("/tmp/prof/run", "pki")) if not os.path.exists("/tmp/prof/run/pki/pki.json") else __import__("json").load(open("/tmp/prof/run/pki/pki.json"))
echod = subprocess.Popen([os.path.join(WT, "build/bench/echod"), "0"], stdout=subprocess.PIPE)
eport = int(echod.stdout.readline())
def cfg(leaf, tunnels):
    return {"identity": {"cert": pki["leaves"][leaf]["crt"], "key": pki["leaves"][leaf]["key"],
                         "trust": pki["federated"]},
            "tls": {"ciphers": ["AES-128-GCM"]},
            "dataplane": {"workers": 1, "offload": "userspace"}, "tunnels": tunnels}
def gw(side, c):
    p = os.path.join(wd, side + ".json"); json.dump(c, open(p, "w"))
    pf = os.path.join(wd, side + ".ports")
    if os.path.exists(pf): os.unlink(pf)
    pr = subprocess.Popen([FG, "run", "-c", p, "--ports-file", pf],
                          stdout=open(os.path.join(wd, side + ".log"), "w"), stderr=subprocess.STDOUT)
    while not os.path.exists(pf): time.sleep(0.02)
    time.sleep(0.1)
    return pr, {t: int(a.rsplit(":", 1)[1]) for t, a in (l.split() for l in open(pf) if l.strip())}
tp, term = gw("terminate", cfg("bar", [{"name": "from-echo", "mode": "terminate",
    "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{eport}",
    "allow": [{"dns": "foo.internal", "root": "Cloud Root CA"}]}]))
op, orig = gw("originate", cfg("foo", [{"name": "to-echo", "mode": "originate",
    "listen": "127.0.0.1:0", "peer": f"127.0.0.1:{term['from-echo']}", "server_name": "bar.internal",
    "allow": [{"dns": "bar.internal", "root": "Kubernetes Root CA"}]}]))
info = {"echo": eport, "orig": orig["to-echo"], "echod_pid": echod.pid,
        "term_pid": tp.pid, "orig_pid": op.pid}
json.dump(info, open("/tmp/prof/ports-%s.json" % TAG, "w")); print(json.dumps(info), flush=True)
try:
    while True: time.sleep(3600)
except KeyboardInterrupt: pass
finally:
    for p in (op, tp, echod): p.terminate()
