"""The layout rules of README's "Layout" section, read off the tree and the built objects:
who may include whom, who may call whom, no circle of calls between files, and no product
file over 600 lines. A change that breaks one names the file and the rule."""

import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BUILD_DIR", os.path.join(ROOT, "build"))
PRODUCT = ("lib", "include", "control", "dataplane", "bpf")
MAX_LINES = 600
INCLUDE_RX = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def room(path):
    """The process (or library) a source path belongs to."""
    if path.startswith(("lib/", "include/")):
        return "lib"
    if path.startswith("control/ca/"):
        return "ca"
    if path.startswith("control/"):
        return "control"
    if path.startswith("dataplane/"):
        return "dataplane"
    if path.startswith("bpf/"):
        return "bpf"
    return None


def sources(exts=(".c", ".h")):
    for top in PRODUCT:
        for d, _, files in os.walk(os.path.join(ROOT, top)):
            rel_d = os.path.relpath(d, ROOT)
            for f in sorted(files):
                if f.endswith(exts):
                    yield os.path.join(rel_d, f)


def include_room(inc):
    if inc.startswith("fedgate/"):
        return "lib"
    return room(inc)


# who may include (and call) whom; control/main.c is the binary's entry and also starts
# the data plane and the CA commands.
MAY_USE = {
    "lib": {"lib"},
    "ca": {"lib", "ca"},
    "dataplane": {"lib", "dataplane"},
    "control": {"lib", "ca", "control", "bpf"},
    "bpf": {"lib", "bpf"},
}
ENTRY = "control/main.c"
ENTRY_MAY_USE = {"lib", "ca", "control", "dataplane"}


def allowed(src):
    return ENTRY_MAY_USE if src == ENTRY else MAY_USE[room(src)]


def test_no_product_file_is_over_600_lines():
    big = []
    for p in sources():
        with open(os.path.join(ROOT, p), encoding="utf-8") as f:
            n = sum(1 for _ in f)
        if n > MAX_LINES:
            big.append(f"{p}: {n} lines")
    assert not big, "split by concern:\n" + "\n".join(big)


def test_each_room_includes_only_what_it_may():
    bad = []
    for p in sources():
        text = open(os.path.join(ROOT, p), encoding="utf-8").read()
        for inc in INCLUDE_RX.findall(text):
            r = include_room(inc)
            beside = os.path.exists(os.path.join(ROOT, os.path.dirname(p), inc))
            in_bpf = room(p) == "bpf" and os.path.exists(os.path.join(ROOT, "bpf", inc))
            if r is None and (beside or in_bpf):
                r = room(p)  # beside the file, or in bpf/ (BPF programs build with -Ibpf)
            if r is None:
                rel = os.path.relpath(os.path.dirname(p), "bpf") if p.startswith("bpf/") else ""
                if not os.path.exists(os.path.join(BUILD, "bpf", rel, inc)):  # skeletons
                    bad.append(f"{p}: includes \"{inc}\", which is in no room")
                continue
            if r not in allowed(p):
                bad.append(f"{p} ({room(p)}) includes {inc} ({r})")
    assert not bad, "\n".join(bad)


def test_type_headers_declare_types_only():
    # X-t.h: types, constants and forward declarations; it pulls in no prototypes
    bad = []
    for p in sources((".h",)):
        if not p.endswith("-t.h"):
            continue
        text = open(os.path.join(ROOT, p), encoding="utf-8").read()
        for inc in INCLUDE_RX.findall(text):
            if not inc.endswith("-t.h"):
                bad.append(f"{p} includes {inc}, which is not a type header")
        for m in re.finditer(r"^[a-z_][\w \t\*]*\b(fg_\w+)\s*\([^;{]*\)\s*;", text, re.M):
            bad.append(f"{p} declares function {m.group(1)}")
    assert not bad, "\n".join(bad)


def objects():
    out = {}
    for p in sources((".c",)):
        o = os.path.join(BUILD, p[:-2] + ".o")
        if room(p) != "bpf" and not p.endswith(".bpf.c"):
            out[p] = o
    return out


def symbols(obj):
    r = subprocess.run(["nm", "-P", obj], capture_output=True, text=True, check=True)
    defined, undefined = set(), set()
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if kind == "U":
            undefined.add(name)
        elif kind in "TDBRVWG" and kind.isupper():
            defined.add(name)
    return defined, undefined


@pytest.fixture(scope="module")
def call_graph():
    objs = objects()
    missing = [o for o in objs.values() if not os.path.exists(o)]
    assert not missing, f"build first (make): {missing[:3]}"
    owner, uses = {}, {}
    for src, o in objs.items():
        d, u = symbols(o)
        for s in d:
            owner[s] = src
        uses[src] = u
    return {src: {owner[s] for s in u if s in owner and owner[s] != src}
            for src, u in uses.items()}


def test_each_room_calls_only_what_it_may(call_graph):
    bad = [f"{src} ({room(src)}) calls into {dst} ({room(dst)})"
           for src, dsts in sorted(call_graph.items()) for dst in sorted(dsts)
           if room(dst) not in allowed(src)]
    assert not bad, "\n".join(bad)


def test_no_two_files_call_each_other_in_a_circle(call_graph):
    # Tarjan's strongly connected components over the file-level call graph
    index, low, on, stack, sccs, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in call_graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    for v in sorted(call_graph):
        if v not in index:
            visit(v)
    assert not sccs, "files that call each other in a circle:\n" + "\n".join(
        " <-> ".join(c) for c in sccs)
