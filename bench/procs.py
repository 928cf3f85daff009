"""CPU time and memory of a contender's processes, read from /proc.

A contender is a set of root processes (for example the originate and the
terminate gateway). What it costs is the sum over those roots and every live
descendant: fedgate's data plane child, nginx's worker, socat's forked
per-connection children. Threads are included because /proc/PID/stat already
sums every thread of a process, the exited ones too.
"""

import os
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat(pid):
    """(ppid, utime+stime+cutime+cstime in ticks) of @pid, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    fields = data[data.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime..cstime are fields 14..17.
    return int(fields[1]), sum(int(x) for x in fields[11:15])


def tree(roots):
    """{pid: ticks} for @roots and all their live descendants."""
    stats = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st:
                stats[int(name)] = st
    children = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = {}, [p for p in roots if p in stats]
    while todo:
        pid = todo.pop()
        if pid in out:
            continue
        out[pid] = stats[pid][1]
        todo.extend(children.get(pid, ()))
    return out


def cpu_seconds(roots):
    """Core-seconds the process trees under @roots have used so far.

    A child that exited and was reaped moved its time into its parent's
    cutime/cstime, so the sum over the live tree stays monotonic as long as
    the roots live.
    """
    return sum(tree(roots).values()) / CLK_TCK


def machine_cpu_seconds():
    """Core-seconds every CPU of the machine has been busy so far, a counter to take
    differences of: online CPUs x CLOCK_MONOTONIC - (idle + iowait + steal) of /proc/stat.

    Busy is everything but idle, iowait and steal: user, nice, system, irq and softirq, so
    the kernel work a process's own times miss (softirq for veth, tun and loopback TCP, run
    on whatever task it interrupts) counts here. Taken as the complement of idle, not as the
    sum of those five: they are sampled at the tick, and on a tickless kernel a CPU that is
    busy in bursts shorter than a tick and idle in between loses them (measured on the
    2-core VM: 0.04 core-s summed against 0.49 from idle over 2 s of a socat relay at
    1 Gbit/s; the two agree within a few percent when the CPUs are saturated), while idle
    time is measured precisely at each idle entry and exit.
    """
    ncpu, idle = 0, 0
    with open("/proc/stat") as f:
        for line in f:
            if not line.startswith("cpu"):
                break
            fields = line.split()
            if fields[0] == "cpu":
                # user nice system idle iowait irq softirq steal ...
                idle = int(fields[4]) + int(fields[5]) + int(fields[8])
            else:
                ncpu += 1
    return ncpu * time.monotonic() - idle / CLK_TCK


def pss_kib(roots):
    """Proportional set size (KiB) summed over the trees under @roots.

    PSS rather than RSS so that pages shared between forked children (socat)
    or between the two gateways' copies of a library are counted once.
    """
    total = 0
    for pid in tree(roots):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass  # exited between the scan and now
    return total


def count(roots):
    return len(tree(roots))


def fd_count(roots):
    """Open file descriptors over the trees under @roots (threads share their process's)."""
    total = 0
    for pid in tree(roots):
        try:
            total += len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            pass
    return total


def wait_fds(roots, limit, timeout):
    """Wait until the trees under @roots hold at most @limit descriptors; False on timeout."""
    deadline = time.monotonic() + timeout
    while fd_count(roots) > limit:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
