#!/usr/bin/python3
"""A delay link for `make bench`'s ttfb_new_conn_ms: TCP relays that behave like a WAN path
of a given round-trip time between the two sides of a contender (the host kernel here has no
netem).

    bench/wan.py --rtt-ms 40 LISTEN_PORT:TARGET_PORT ...

Each accepted connection is dialled onward only after one RTT (what the SYN and SYN-ACK over
the WAN would take), and every chunk then reaches the other end half an RTT after it came in,
in order, each way; a FIN too. Bytes sent before the far side "answered" the SYN wait for it:
so a client's first flight arrives 1.5 RTT after its connect(), as over a real path. Loopback
adds its own few microseconds and Python's scheduling well under a millisecond: against 40 ms
that is noise, and the same for every contender. Prints "ready" once every port listens.
"""

import argparse
import asyncio
import sys
import time


async def pump(reader, writer, delay, not_before):
    """Copies @reader to @writer, each chunk @delay s after it came (and not before
    @not_before on the monotonic clock), in order; the EOF the same way."""
    queue = asyncio.Queue()

    async def read():
        while True:
            try:
                data = await reader.read(65536)
            except (ConnectionError, OSError):
                data = b""
            await queue.put((max(time.monotonic(), not_before) + delay, data))
            if not data:
                return

    async def write():
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
            except (ConnectionError, OSError):
                return

    await asyncio.gather(read(), write())


async def relay(client_r, client_w, target, rtt):
    accepted = time.monotonic()
    try:
        # The far side answers the SYN one RTT from now; what the client sends meanwhile
        # leaves once it has.
        await asyncio.sleep(rtt)
        server_r, server_w = await asyncio.open_connection("127.0.0.1", target)
    except OSError:
        client_w.close()
        return
    try:
        await asyncio.gather(pump(client_r, server_w, rtt / 2, accepted + rtt),
                             pump(server_r, client_w, rtt / 2, 0))
    finally:
        for w in (client_w, server_w):
            w.close()


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rtt-ms", type=float, required=True)
    ap.add_argument("pairs", nargs="+", help="LISTEN_PORT:TARGET_PORT on 127.0.0.1")
    args = ap.parse_args()
    rtt = args.rtt_ms / 1000
    servers = []
    for pair in args.pairs:
        listen, target = (int(x) for x in pair.split(":"))
        servers.append(await asyncio.start_server(
            lambda r, w, t=target: relay(r, w, t, rtt), "127.0.0.1", listen, backlog=4096))
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
