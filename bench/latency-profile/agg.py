import re, sys, collections
sub = collections.Counter(); comp = collections.Counter(); reqop = {}
pid_ring = {}
for line in sys.stdin:
    m = re.search(r'(\S+)\s+(\d+)\s+\[\d+\]\s+[\d.]+:\s+io_uring:(\w+): ring (\S+), req (\S+), user_data (\S+), (.*)', line)
    if not m: continue
    comm, tid, ev, ring, req, ud, rest = m.groups()
    if ev == 'io_uring_submit_req':
        op = re.search(r'opcode (\w+)', rest).group(1)
        reqop[(ring, req)] = op; sub[(ring, op)] += 1
    elif ev == 'io_uring_complete':
        res = int(re.search(r'result (-?\d+)', rest).group(1))
        op = reqop.get((ring, req), '?')
        cls = 'EAGAIN' if res == -11 else ('err%d' % res if res < 0 else ('0' if res == 0 else '>0'))
        comp[(ring, op, cls)] += 1
N = float(sys.argv[1])
for ring in sorted({k[0] for k in sub}):
    print('ring', ring)
    for (r, op), c in sorted(sub.items()):
        if r == ring: print('  submit %-10s %7d  %.2f/RT' % (op, c, c / N))
    for (r, op, cls), c in sorted(comp.items()):
        if r == ring: print('  complete %-10s %-6s %7d  %.2f/RT' % (op, cls, c, c / N))
