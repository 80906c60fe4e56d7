"""The gateway cannot be held by half-open TLS handshakes from an allowed address: with 300 of them held open
from intruder (its address let through the firewall, as any address of an allowed network is), laptop's build
succeeds, the gateway takes at most 256 connections from that address, closes each handshake after seconds,
and its memory stays bounded. Prints the figures (the cached rebuild's time with and without the flood)."""
from __future__ import annotations

import re
import time

import pytest
from helpers import INV, LAB, build, invoke, wait_until_proxy_sends_home

pytestmark = pytest.mark.lab

B1 = LAB.address("build1")
# Each connection sends a TLS record header announcing a ClientHello that never comes, then holds. The program
# counts, every second, how many of its connections the gateway has closed (a read returns b"" or fails).
FLOOD = r"""
import socket, sys, time
n, hold = int(sys.argv[1]), float(sys.argv[2])
socks, refused = [], 0
for _ in range(n):
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect(("%s", 1234))
        s.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00]))   # handshake record of 512 bytes: never sent
        s.setblocking(False)
        socks.append(s)
    except OSError:
        refused += 1
print(f"opened {len(socks)} refused {refused}", flush=True)
t0 = time.time()
open_ = set(range(len(socks)))
while time.time() - t0 < hold:
    for i in list(open_):
        try:
            if socks[i].recv(1) == b"":
                open_.discard(i)
        except BlockingIOError:
            pass
        except OSError:
            open_.discard(i)
    print(f"t={time.time() - t0:.0f} open={len(open_)}", flush=True)
    time.sleep(1)
""" % B1


def gateway_memory(lab) -> str:
    return lab.run("build1", "docker stats --no-stream --format '{{.MemUsage}}' buildkit-gateway",
                   capture=True).stdout.split("/")[0].strip()


def rebuild_seconds(lab, reg) -> float:
    t0 = time.monotonic()
    r = build(lab, "laptop", f"{reg['address']}/team/flood:1", push=False)
    assert r.returncode == 0, r.stderr[-2000:]
    return time.monotonic() - t0


def test_half_open_handshakes_from_an_allowed_address_do_not_hold_the_gateway(served, reg):
    lab = served
    saved = INV.read_text()
    try:
        r = invoke("add-client", "intruder", "--address", LAB.address("intruder"), "--connection", "none")
        assert r.returncode == 0, r.stderr
        wait_until_proxy_sends_home(lab)
        rebuild_seconds(lab, reg)                            # (warm: the next ones are cached rebuilds)
        quiet = rebuild_seconds(lab, reg)
        idle_memory = gateway_memory(lab)
        lab.run("intruder", "cat > /root/flood.py", capture=True, input=FLOOD)
        lab.run("intruder", "nohup python3 /root/flood.py 300 25 > /root/flood.log 2>&1 &", capture=True)
        time.sleep(3)                                        # (the 300 connections are made within a second)
        flooded_memory = gateway_memory(lab)
        during = rebuild_seconds(lab, reg)
        time.sleep(max(0.0, 20 - 3 - during))
        log = lab.run("intruder", "cat /root/flood.log", capture=True).stdout
        opened, refused = map(int, re.search(r"opened (\d+) refused (\d+)", log).groups())
        still = [int(x) for x in re.findall(r"open=(\d+)", log)]
        print(f"\nhandshake flood from intruder: {opened} connections made, {refused} refused; held open "
              f"after 2 s: {still[2] if len(still) > 2 else '-'}, after 15 s: {still[15] if len(still) > 15 else '-'}; "
              f"gateway memory {idle_memory} idle, {flooded_memory} under the flood; cached rebuild "
              f"{quiet:.2f} s without, {during:.2f} s with the flood ({during / quiet:.2f}x)")
        assert len(still) > 15 and still[2] <= 256          # at most 256 from one address (the rest closed)
        assert still[15] == 0                                # every handshake ended by the gateway within seconds
        assert float(re.match(r"[0-9.]+", flooded_memory).group()) < 64   # MiB (units below: MiB under 1 GiB)
        assert "MiB" in flooded_memory or "KiB" in flooded_memory
    finally:
        invoke("remove-client", "intruder")
        INV.write_text(saved)
