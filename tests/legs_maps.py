"""Reads the local legs redirect's BPF maps of a running fedgate (tests only).

The maps are found through the process's own fds (/proc/PID/fdinfo has map_id) and
bpftool's names; entries are counted and read with the bpf(2) syscall, and the slot
array is mapped, as the data plane maps it. Root only.
"""

import ctypes
import json
import mmap
import os
import struct
import subprocess

SYS_BPF = 321  # x86_64
BPF_MAP_LOOKUP_ELEM, BPF_MAP_GET_NEXT_KEY, BPF_MAP_GET_FD_BY_ID = 1, 4, 14
SLOTS, SLOT_SIZE = 65536, 32
CLAIMED = 1 << 63
# enum fg_legs_stat (include/fedgate/legs-t.h)
STATS = ["bytes", "msgs", "tcp_bytes", "over_budget", "sticky", "no_slot", "pairs"]

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _bpf(cmd, attr):
    buf = ctypes.create_string_buffer(bytes(attr), 128)
    ret = _libc.syscall(ctypes.c_long(SYS_BPF), ctypes.c_int(cmd), buf, ctypes.c_uint(128))
    if ret < 0:
        return -ctypes.get_errno()
    return ret


def map_ids(pid):
    """{name: id} of the legs_* maps held by process @pid."""
    ids = set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(f"{fd_dir}/{fd}") != "anon_inode:bpf-map":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    if line.startswith("map_id:"):
                        ids.add(int(line.split()[1]))
        except OSError:
            continue
    out = json.loads(subprocess.run(["bpftool", "-j", "map", "show"], check=True,
                                    capture_output=True, text=True).stdout)
    return {m["name"]: m["id"] for m in out if m["id"] in ids and m.get("name", "").startswith("legs_")}


def all_legs_map_ids():
    out = json.loads(subprocess.run(["bpftool", "-j", "map", "show"], check=True,
                                    capture_output=True, text=True).stdout)
    return {m["id"] for m in out if m.get("name", "").startswith("legs_")}


class LegsMaps:
    """The maps of one fedgate control process, open by fd until close()."""

    def __init__(self, pid):
        self.ids = map_ids(pid)
        self.fds = {}
        for name, mid in self.ids.items():
            fd = _bpf(BPF_MAP_GET_FD_BY_ID, struct.pack("III", mid, 0, 0))
            if fd < 0:
                raise OSError(-fd, f"BPF_MAP_GET_FD_BY_ID {name}")
            self.fds[name] = fd
        self.slots = mmap.mmap(self.fds["legs_slots"], SLOTS * SLOT_SIZE, mmap.MAP_SHARED,
                               mmap.PROT_READ)

    def close(self):
        self.slots.close()
        for fd in self.fds.values():
            os.close(fd)

    def count(self, name, key_size):
        """Entries of hash-like map @name."""
        fd, n = self.fds[name], 0
        key = ctypes.create_string_buffer(key_size)
        nxt = ctypes.create_string_buffer(key_size)
        first = True
        while True:
            attr = struct.pack("IIQQ", fd, 0, 0 if first else ctypes.addressof(key),
                               ctypes.addressof(nxt))
            if _bpf(BPF_MAP_GET_NEXT_KEY, attr) < 0:
                return n
            n += 1
            ctypes.memmove(key, nxt, key_size)
            first = False

    def pairs(self):
        return self.count("legs_pair", 40)  # the key: struct fg_tuple

    def socks(self):
        return self.count("legs_socks", 40)

    def expects(self):
        return self.count("legs_expect", 8)

    def owned_slots(self):
        """(index, owner, redirected, consumed, sticky) of every owned slot."""
        out = []
        raw = self.slots[:]
        for i in range(SLOTS):
            owner = struct.unpack_from("Q", raw, i * SLOT_SIZE)[0]
            if owner:
                out.append((i,) + struct.unpack_from("QQQQ", raw, i * SLOT_SIZE))
        return out

    def stats(self):
        """The global counters, summed over CPUs."""
        ncpu = os.cpu_count()
        possible = open("/sys/devices/system/cpu/possible").read().strip()
        ncpu = int(possible.split("-")[-1]) + 1
        val = ctypes.create_string_buffer(8 * ncpu)
        out = {}
        for i, name in enumerate(STATS):
            key = ctypes.c_uint32(i)
            attr = struct.pack("IIQQQ", self.fds["legs_stats"], 0, ctypes.addressof(key),
                               ctypes.addressof(val), 0)
            if _bpf(BPF_MAP_LOOKUP_ELEM, attr) < 0:
                raise OSError("lookup legs_stats")
            out[name] = sum(struct.unpack_from(f"{ncpu}Q", val.raw))
        return out
