#!/usr/bin/env python3
"""Add a fixed delay to every packet between this machine and one lab host.

This kernel has no sch_netem, so `tc qdisc ... netem` is unavailable. Instead,
iptables hands each packet to NFQUEUE, and this program holds it for DELAY_MS
before issuing the ACCEPT verdict: DELAY_MS each way. `--queue-bypass` keeps
traffic flowing if this program dies. Plain Python over a raw netlink socket.

    latency.py HOST DELAY_MS [QUEUE]     (runs until SIGTERM/SIGINT, removes its rules)
"""
from __future__ import annotations

import heapq
import select
import signal
import socket
import struct
import subprocess
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS = 1, 2
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NF_ACCEPT = 1
NLM_F_REQUEST = 1


def attr(kind: int, data: bytes) -> bytes:
    a = struct.pack("=HH", 4 + len(data), kind) + data
    return a + b"\0" * ((4 - len(a) % 4) % 4)


def message(msg: int, queue: int, attrs: bytes, seq: int = 0) -> bytes:
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + attrs
    return struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | msg, NLM_F_REQUEST, seq, 0) + body


def rules(action: str, host: str, queue: int) -> None:
    for chain, match in (("OUTPUT", "-d"), ("INPUT", "-s")):
        subprocess.run(["iptables", "-t", "mangle", action, chain, match, host, "-j", "NFQUEUE", "--queue-num",
                        str(queue), "--queue-bypass"], check=action == "-I", capture_output=True)


def main(host: str, delay_ms: float, queue: int = 7) -> None:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.bind((0, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.send(message(NFQNL_MSG_CONFIG, queue, attr(NFQA_CFG_CMD, struct.pack("=BxH", NFQNL_CFG_CMD_BIND,
                                                                                socket.htons(socket.AF_INET)))))
    sock.send(message(NFQNL_MSG_CONFIG, queue, attr(NFQA_CFG_PARAMS, struct.pack(">IB", 0, NFQNL_COPY_META))))
    rules("-I", host, queue)
    stop = False

    def on_signal(*_):
        nonlocal stop
        stop = True
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"delaying packets to and from {host} by {delay_ms} ms each way (queue {queue})", file=sys.stderr,
          flush=True)
    pending: list[tuple[float, int]] = []
    delay = delay_ms / 1000.0
    try:
        while not stop:
            timeout = max(0.0, pending[0][0] - time.monotonic()) if pending else 0.2
            ready, _, _ = select.select([sock], [], [], timeout)
            if ready:
                data = sock.recv(1 << 16)
                off = 0
                while off + 16 <= len(data):
                    length, mtype = struct.unpack_from("=IH", data, off)
                    if length < 16:
                        break
                    if mtype == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                        a = off + 20
                        while a + 4 <= off + length:
                            alen, akind = struct.unpack_from("=HH", data, a)
                            if alen < 4:
                                break
                            if (akind & 0x7FFF) == NFQA_PACKET_HDR:
                                pid = struct.unpack_from(">I", data, a + 4)[0]
                                heapq.heappush(pending, (time.monotonic() + delay, pid))
                            a += (alen + 3) & ~3
                    off += (length + 3) & ~3
            now = time.monotonic()
            while pending and pending[0][0] <= now:
                _, pid = heapq.heappop(pending)
                sock.send(message(NFQNL_MSG_VERDICT, queue, attr(NFQA_VERDICT_HDR, struct.pack(">II", NF_ACCEPT, pid))))
    finally:
        rules("-D", host, queue)
        for _, pid in pending:
            sock.send(message(NFQNL_MSG_VERDICT, queue, attr(NFQA_VERDICT_HDR, struct.pack(">II", NF_ACCEPT, pid))))
        sock.close()


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        raise SystemExit(__doc__)
    main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) == 4 else 7)
