#!/usr/bin/env python3
"""Rewrite the records of a classic pcap file to make a damaged capture.

  pcap_mutate.py IN OUT --seed N --ops dup,reorder,...

Operations (applied in the order given, each with the same seeded PRNG):
  dup       duplicate a few records in place (retransmissions as captured twice)
  reorder   move a few records a short distance (out-of-order delivery)
  drop      remove a few records (packet loss at the capture point)
  flip      change a few bytes of a few records past the TCP header
  time      jitter timestamps, some backwards
  cut       cut the file at a random byte (a capture cut short mid-record)
  shorten   lower a few records' captured length (snaplen-style truncation)

Standard library only. Only classic pcap (any byte order, us or ns).
"""

import argparse
import random
import struct
import sys


def read_pcap(data):
    if len(data) < 24:
        raise ValueError("not a pcap file")
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise ValueError("not a classic pcap file")
    header = data[:24]
    recs = []
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack(endian + "IIII", data[off:off + 16])
        body = data[off + 16:off + 16 + incl]
        if len(body) < incl:
            break
        recs.append([sec, frac, orig, bytearray(body)])
        off += 16 + incl
    return endian, header, recs


def write_pcap(endian, header, recs):
    out = bytearray(header)
    for sec, frac, orig, body in recs:
        out += struct.pack(endian + "IIII", sec & 0xFFFFFFFF, frac, len(body), max(orig, len(body)))
        out += body
    return bytes(out)


def few(rng, n):
    return max(1, min(n, rng.randint(1, 1 + n // 10)))


def mutate(endian, header, recs, ops, rng):
    cut = None
    for op in ops:
        n = len(recs)
        if n == 0:
            break
        if op == "dup":
            for _ in range(few(rng, n)):
                i = rng.randrange(len(recs))
                recs.insert(i + 1, [recs[i][0], recs[i][1], recs[i][2], bytearray(recs[i][3])])
        elif op == "reorder":
            for _ in range(few(rng, n)):
                i = rng.randrange(len(recs))
                j = min(len(recs) - 1, max(0, i + rng.randint(-4, 4)))
                recs.insert(j, recs.pop(i))
        elif op == "drop":
            for _ in range(few(rng, n)):
                if len(recs) > 1:
                    recs.pop(rng.randrange(len(recs)))
        elif op == "flip":
            for _ in range(few(rng, n)):
                body = recs[rng.randrange(len(recs))][3]
                if len(body) > 54:
                    for _ in range(rng.randint(1, 8)):
                        body[rng.randrange(54, len(body))] = rng.randrange(256)
        elif op == "time":
            for r in recs:
                if rng.random() < 0.2:
                    r[0] += rng.choice([-2, -1, 0, 1, 30, 3600])
        elif op == "shorten":
            for _ in range(few(rng, n)):
                r = recs[rng.randrange(len(recs))]
                if len(r[3]) > 14:
                    del r[3][rng.randrange(14, len(r[3])):]
        elif op == "cut":
            cut = True
        else:
            raise ValueError("unknown operation %r" % op)
    data = write_pcap(endian, header, recs)
    if cut and len(data) > 40:
        data = data[:rng.randrange(40, len(data))]
    return data


def main():
    ap = argparse.ArgumentParser(description="Damage a pcap file's records.")
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ops", default="dup,reorder")
    args = ap.parse_args()
    with open(args.input, "rb") as f:
        endian, header, recs = read_pcap(f.read())
    data = mutate(endian, header, recs, [o for o in args.ops.split(",") if o], random.Random(args.seed))
    with open(args.output, "wb") as f:
        f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
