#!/usr/bin/env python3
"""Delay every packet that arrives from PEER by DELAY_MS, in this network namespace.

This kernel has no sch_netem, so `tc qdisc ... netem` is unavailable. Instead,
iptables (mangle INPUT, -s PEER) hands each arriving packet to NFQUEUE, and this
program holds it for DELAY_MS before issuing the ACCEPT verdict. Run one on each
side (the lab host's side with `nsenter -t PID -n`) for a symmetric round trip.
Delaying at the receiver matters: packets held on the sender's OUTPUT hook
still count against the sending socket (TCP small queues), which throttles a
bulk transfer to a few packets per round trip, unlike a real WAN.
`--queue-bypass` keeps traffic flowing if this program dies. Plain Python over
a raw netlink socket, no extra library.

    latency.py PEER DELAY_MS [QUEUE]    (runs until SIGTERM/SIGINT, then removes its rule)
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
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN = 1, 2, 3
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
    subprocess.run(["iptables", "-t", "mangle", action, "INPUT", "-s", host, "-j", "NFQUEUE", "--queue-num",
                    str(queue), "--queue-bypass"], check=action == "-I", capture_output=True)


def main(host: str, delay_ms: float, queue: int = 7) -> None:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.bind((0, 0))
    # room for every packet in flight during the delay: a full queue or socket buffer drops packets
    sock.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE
    sock.setsockopt(socket.SOL_SOCKET, 32, 16 << 20)  # SO_SNDBUFFORCE
    sock.send(message(NFQNL_MSG_CONFIG, queue, attr(NFQA_CFG_CMD, struct.pack("=BxH", NFQNL_CFG_CMD_BIND,
                                                                                socket.htons(socket.AF_INET)))))
    sock.send(message(NFQNL_MSG_CONFIG, queue, attr(NFQA_CFG_PARAMS, struct.pack(">IB", 0, NFQNL_COPY_META))))
    sock.send(message(NFQNL_MSG_CONFIG, queue, attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack(">I", 1 << 16))))
    rules("-I", host, queue)
    stop = False

    def on_signal(*_):
        nonlocal stop
        stop = True
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"delaying packets from {host} by {delay_ms} ms (queue {queue})", file=sys.stderr,
          flush=True)
    pending: list[tuple[float, int]] = []
    delay = delay_ms / 1000.0
    try:
        while not stop:
            timeout = max(0.0, pending[0][0] - time.monotonic()) if pending else 0.2
            ready, _, _ = select.select([sock], [], [], timeout)
            for _ in range(256 if ready else 0):  # drain a bounded batch, then hand out due verdicts
                try:
                    data = sock.recv(1 << 16, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
                except OSError:  # ENOBUFS: the kernel dropped messages; carry on
                    continue
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
