#!/usr/bin/env python3
"""Write adversarial captures for the plugin's memory caps and time bounds.

These are hand-made transcripts, not recordings: every packet is synthesised
here (Ethernet/IPv4/TCP, checksums left zero, which Wireshark does not check
by default). Documentation addresses only (RFC 5737).

  make_adversarial.py OUTDIR [--connects N[,N...]] [--long-line MB]
                             [--endless-line MB] [--tunnels N] [--garbage N]

Writes:
  connect_flood_<N>.pcap    N CONNECT requests to a mail port, each its own
                            TCP stream (SYN, SYN-ACK, ACK, CONNECT), then a
                            403 answer to the first 1000 (after all requests)
  long_request_line.pcap    one request line of MB megabytes (no LF until the end)
  endless_smtp_line.pcap    an established tunnel whose client sends MB
                            megabytes of one SMTP line without a newline
  concurrent_tunnels.pcap   N tunnels to one target at the same moment, their
                            N relay legs, then a distinct SMTP dialogue on each
  garbage_after_200.pcap    N tunnels whose proxy answers 200 and then random
                            bytes, in the answer's segment and after it

Standard library only.
"""

import argparse
import os
import random
import struct
import sys

PROXY = (203, 0, 113, 1)
MTA = (198, 51, 100, 25)
PROXY_PORT = 8080
MSS = 1448


class PcapWriter:
    def __init__(self, path):
        self.f = open(path, "wb", buffering=1 << 20)
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        self.t = 1_800_000_000.0
        self.count = 0
        self.eth = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"

    def packet(self, src, sport, dst, dport, seq, ack, flags, payload=b"", dt=0.00001):
        self.t += dt
        ip = struct.pack("!BBHHHBBH4B4B", 0x45, 0, 40 + len(payload), self.count & 0xFFFF, 0x4000, 64, 6, 0,
                         *src, *dst)
        tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags,
                          65535, 0, 0)
        frame = self.eth + ip + tcp + payload
        sec = int(self.t)
        usec = int((self.t - sec) * 1e6)
        self.f.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)))
        self.f.write(frame)
        self.count += 1

    def close(self):
        self.f.close()


SYN, ACK, PSH, FIN = 0x02, 0x10, 0x08, 0x01


class Conn:
    """One TCP connection: handshake and data with correct sequence numbers."""

    def __init__(self, w, client, cport, server, sport, isn=1000, sisn=500000):
        self.w, self.c, self.cp, self.s, self.sp = w, client, cport, server, sport
        self.cseq, self.sseq = isn, sisn

    def handshake(self, dt=0.00001):
        w = self.w
        w.packet(self.c, self.cp, self.s, self.sp, self.cseq, 0, SYN, dt=dt)
        w.packet(self.s, self.sp, self.c, self.cp, self.sseq, self.cseq + 1, SYN | ACK, dt=dt)
        self.cseq += 1
        self.sseq += 1
        w.packet(self.c, self.cp, self.s, self.sp, self.cseq, self.sseq, ACK, dt=dt)

    def send(self, from_client, data, dt=0.00001):
        for i in range(0, len(data), MSS):
            chunk = data[i:i + MSS]
            if from_client:
                self.w.packet(self.c, self.cp, self.s, self.sp, self.cseq, self.sseq, PSH | ACK, chunk, dt)
                self.cseq += len(chunk)
            else:
                self.w.packet(self.s, self.sp, self.c, self.cp, self.sseq, self.cseq, PSH | ACK, chunk, dt)
                self.sseq += len(chunk)

    def close(self, dt=0.00001):
        w = self.w
        w.packet(self.c, self.cp, self.s, self.sp, self.cseq, self.sseq, FIN | ACK, dt=dt)
        w.packet(self.s, self.sp, self.c, self.cp, self.sseq, self.cseq + 1, FIN | ACK, dt=dt)
        w.packet(self.c, self.cp, self.s, self.sp, self.cseq + 1, self.sseq + 1, ACK, dt=dt)


def client_addr(i):
    return (10, (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF)


def connect_flood(path, n):
    """n CONNECT requests, each its own stream; written packet by packet (fast path)."""
    w = PcapWriter(path)
    req = b"CONNECT 198.51.100.25:25 HTTP/1.0\r\n\r\n"
    for i in range(n):
        c = client_addr(i + 1)
        cp = 1024 + i % 60000
        w.packet(c, cp, PROXY, PROXY_PORT, 1000, 0, SYN)
        w.packet(PROXY, PROXY_PORT, c, cp, 5000, 1001, SYN | ACK)
        w.packet(c, cp, PROXY, PROXY_PORT, 1001, 5001, ACK)
        w.packet(c, cp, PROXY, PROXY_PORT, 1001, 5001, PSH | ACK, req)
    # The proxy finally refuses the first 1000: their state is long evicted.
    refusal = b"HTTP/1.0 403 Forbidden\r\n\r\n"
    for i in range(min(n, 1000)):
        c = client_addr(i + 1)
        cp = 1024 + i % 60000
        w.packet(PROXY, PROXY_PORT, c, cp, 5001, 1001 + len(req), PSH | ACK, refusal)
    w.close()
    return w.count


def long_request_line(path, mb):
    w = PcapWriter(path)
    t = Conn(w, (192, 0, 2, 10), 40000, PROXY, PROXY_PORT)
    t.handshake()
    t.send(True, b"CONNECT " + b"a" * (mb << 20) + b".example:25 HTTP/1.0\r\n\r\n")
    t.send(False, b"HTTP/1.0 400 Bad Request\r\n\r\n")
    t.close()
    w.close()
    return w.count


def endless_smtp_line(path, mb):
    w = PcapWriter(path)
    t = Conn(w, (192, 0, 2, 10), 40001, PROXY, PROXY_PORT)
    r = Conn(w, PROXY, 50001, MTA, 25)
    t.handshake()
    t.send(True, b"CONNECT 198.51.100.25:25 HTTP/1.0\r\n\r\n")
    r.handshake()
    t.send(False, b"HTTP/1.0 200 Connection established\r\n\r\n")
    r.send(False, b"220 mx.victim.example ESMTP\r\n")
    t.send(False, b"220 mx.victim.example ESMTP\r\n")
    t.send(True, b"EHLO spam.example\r\n")
    r.send(True, b"EHLO spam.example\r\n")
    r.send(False, b"250 mx.victim.example\r\n")
    t.send(False, b"250 mx.victim.example\r\n")
    line = b"MAIL FROM:<" + b"x" * (mb << 20)
    for i in range(0, len(line), 1 << 20):
        piece = line[i:i + (1 << 20)]
        t.send(True, piece)
        r.send(True, piece)
    t.close()
    r.close()
    w.close()
    return w.count


def concurrent_tunnels(path, n):
    w = PcapWriter(path)
    tunnels = [Conn(w, client_addr(i + 1), 20000 + i % 40000, PROXY, PROXY_PORT) for i in range(n)]
    relays = [Conn(w, PROXY, 30000 + i % 30000, MTA, 25) for i in range(n)]
    dt = 0.5 / (4 * n)  # all requests in 0.5 s, then all relays in 0.5 s
    for t in tunnels:
        t.handshake(dt)
        t.send(True, b"CONNECT 198.51.100.25:25 HTTP/1.0\r\n\r\n", dt)
    for r in relays:
        r.handshake(dt)
    for t in tunnels:
        t.send(False, b"HTTP/1.0 200 Connection established\r\n\r\n", dt)
    for i, (t, r) in enumerate(zip(tunnels, relays)):
        greet = b"220 mx.victim.example ESMTP\r\n"
        r.send(False, greet)
        t.send(False, greet)
        for cmd, rep in ((b"EHLO host%d.example\r\n" % i, b"250 mx\r\n"),
                         (b"MAIL FROM:<s%d@spam.example>\r\n" % i, b"250 ok\r\n"),
                         (b"RCPT TO:<v%d@victim.example>\r\n" % i, b"250 ok\r\n"),
                         (b"QUIT\r\n", b"221 bye\r\n")):
            t.send(True, cmd)
            r.send(True, cmd)
            r.send(False, rep)
            t.send(False, rep)
        t.close()
        r.close()
    w.close()
    return w.count


def garbage_after_200(path, n):
    rng = random.Random(200)
    w = PcapWriter(path)
    for i in range(n):
        t = Conn(w, client_addr(i + 1), 41000 + i % 20000, PROXY, PROXY_PORT)
        t.handshake()
        t.send(True, b"CONNECT 198.51.100.25:25 HTTP/1.0\r\n\r\n")
        head = [b"HTTP/1.0 200 Connection established\r\n\r\n", b"HTTP/1.0 200", b"HTTP/1.1 200 OK\r\n",
                b"HTTP/1.0 200 \x00\xff\r\n\r\n"][i % 4]
        t.send(False, head + bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 3000))))
        for _ in range(rng.randint(1, 6)):
            t.send(rng.random() < 0.5, bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4000))))
        t.close()
    w.close()
    return w.count


def main():
    ap = argparse.ArgumentParser(description="Write adversarial captures (hand-made transcripts).")
    ap.add_argument("outdir")
    ap.add_argument("--connects", default="1000000")
    ap.add_argument("--long-line", type=int, default=10)
    ap.add_argument("--endless-line", type=int, default=20)
    ap.add_argument("--tunnels", type=int, default=5000)
    ap.add_argument("--garbage", type=int, default=1000)
    args = ap.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    jobs = [("connect_flood_%d.pcap" % int(n), connect_flood, int(n)) for n in args.connects.split(",") if n]
    jobs += [("long_request_line.pcap", long_request_line, args.long_line),
             ("endless_smtp_line.pcap", endless_smtp_line, args.endless_line),
             ("concurrent_tunnels.pcap", concurrent_tunnels, args.tunnels),
             ("garbage_after_200.pcap", garbage_after_200, args.garbage)]
    for name, fn, arg in jobs:
        path = os.path.join(args.outdir, name)
        count = fn(path, arg)
        print("%-28s %9d packets %12d bytes" % (name, count, os.path.getsize(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
