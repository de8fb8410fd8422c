#!/usr/bin/env python3
"""Make the fuzz seed corpora from the lab captures.

Reads every capture in captures/*.pcap with tshark and writes, under
fuzz/corpus/<target>/ (one file per seed, named by its SHA-1):

  http        request lines, status lines and header lines, one per seed
  socks       the first client bytes and the first server bytes of SOCKS streams
  lines       each TCP stream's bytes, as feed/next_line calls
  smtp        each TCP stream's dialogue, as client/server chunks
  correlator  each capture's TCP segments, as the target's observation sequence

The last three targets read their input through libFuzzer's
FuzzedDataProvider, so this script encodes the seeds the way those targets
decode them (see FdpWriter and the target sources). Keep the two in step when
a target's decoding changes; a stale seed still runs, it only explores less.

Usage: fuzz/make-seeds.py [--captures DIR] [--out DIR]
Standard library and tshark only.
"""

import argparse
import glob
import hashlib
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

MAX_SEED = 48 * 1024    # bytes per correlator seed: keeps the committed corpus small
MAX_STREAM_SEED = 6000  # bytes per lines/smtp seed
MAX_STREAM_SEEDS = 40   # lines/smtp seeds kept (the smallest distinct ones)


class FdpWriter:
    """Builds an input that FuzzedDataProvider decodes to the given calls:
    integers are taken from the end of the data, strings from the front."""

    def __init__(self):
        self.front = bytearray()
        self.back = []  # bytes in the order the provider consumes them

    def int_range(self, lo, hi, value):
        rng = hi - lo
        v = value - lo
        assert 0 <= v <= rng
        nbytes = 0
        while nbytes < 8 and (rng >> (8 * nbytes)) > 0:
            nbytes += 1
        # The first byte consumed ends up most significant.
        for i in reversed(range(nbytes)):
            self.back.append((v >> (8 * i)) & 0xFF)

    def boolean(self, b):
        self.int_range(0, 255, 1 if b else 0)

    def u8(self, v):
        self.int_range(0, 0xFF, v)

    def u16(self, v):
        self.int_range(0, 0xFFFF, v)

    def u32(self, v):
        self.int_range(0, 0xFFFFFFFF, v)

    def string(self, data, max_length):
        """ConsumeRandomLengthString(max_length); len(data) < max_length."""
        assert len(data) < max_length
        for c in data:
            self.front.append(c)
            if c == 0x5C:  # a backslash is written twice
                self.front.append(0x5C)
        self.front += b"\\ "  # backslash + anything else ends the string

    def data(self):
        return bytes(self.front) + bytes(reversed(self.back))


def chunks(data, n):
    for i in range(0, len(data), n):
        yield data[i:i + n]


def read_capture(path):
    """TCP segments of a capture: dicts in capture order."""
    fields = ["frame.number", "frame.time_epoch", "tcp.stream", "ip.src", "ipv6.src", "ip.dst",
              "ipv6.dst", "tcp.srcport", "tcp.dstport", "tcp.seq_raw", "tcp.flags", "tcp.payload"]
    cmd = ["tshark", "-n", "-r", path, "-Y", "tcp", "-T", "fields", "-E", "occurrence=f"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    segs = []
    for line in out.splitlines():
        v = line.split("\t")
        if len(v) != len(fields) or not v[2]:
            continue
        segs.append({
            "frame": int(v[0]), "time": float(v[1]), "stream": int(v[2]),
            "src": v[3] or v[4], "dst": v[5] or v[6],
            "sport": int(v[7]), "dport": int(v[8]), "seq": int(v[9]),
            "flags": int(v[10], 16), "payload": bytes.fromhex(v[11].replace(":", "")),
        })
    return segs


def streams_of(segs):
    """Per stream: (client endpoint, [(from_client, bytes)]) without retransmissions."""
    out = {}
    for s in segs:
        st = out.setdefault(s["stream"], {"client": None, "parts": [], "next": {}})
        src = (s["src"], s["sport"])
        if st["client"] is None:
            st["client"] = src if (s["flags"] & 0x12) != 0x12 else (s["dst"], s["dport"])
        p = s["payload"]
        if not p:
            continue
        nxt = st["next"].get(src)
        if nxt is not None and s["seq"] != nxt:
            continue  # retransmission or out of order: keep the clean sequence
        st["next"][src] = (s["seq"] + len(p)) & 0xFFFFFFFF
        st["parts"].append((src == st["client"], p))
    return out


# -- per-target seeds --------------------------------------------------------

def http_seeds(streams):
    seeds = set()
    for st in streams.values():
        for _, p in st["parts"][:6]:
            for line in p.split(b"\n")[:8]:
                line = line.rstrip(b"\r")
                if line and len(line) < 512 and (b"HTTP/" in line or b":" in line):
                    seeds.add(line)
    return seeds


def socks_seeds(streams):
    seeds = set()
    for st in streams.values():
        parts = st["parts"]
        if parts and parts[0][0] and parts[0][1][:1] in (b"\x04", b"\x05"):
            client = b"".join(p for c, p in parts[:4] if c)
            server = b"".join(p for c, p in parts[:4] if not c)
            seeds.add(client[:512])
            if server:
                seeds.add(server[:512])
    return seeds


def lines_seeds(streams):
    seeds = set()
    for st in streams.values():
        if not st["parts"]:
            continue
        w = FdpWriter()
        w.int_range(1, 300, 300)  # max_line
        for _, p in st["parts"]:
            for c in chunks(p, 500):
                w.int_range(0, 7, 0)  # feed
                w.boolean(True)       # a string, not a run
                w.string(c, 512)
            w.int_range(0, 7, 3)      # drain lines
            w.int_range(1, 64, 64)
        d = w.data()
        if len(d) <= MAX_STREAM_SEED:
            seeds.add(d)
    return seeds


def smtp_seeds(streams):
    seeds = set()
    for st in streams.values():
        parts = st["parts"]
        if not parts:
            continue
        w = FdpWriter()
        for from_client, p in parts:
            pieces = list(chunks(p, 1000))
            for i, c in enumerate(pieces):
                w.int_range(0, 15, 3)   # feed a chunk
                w.boolean(from_client)
                w.string(c, 1024)
                w.boolean(i == len(pieces) - 1)  # next frame after the segment's last chunk
        d = w.data()
        if len(d) <= MAX_STREAM_SEED:
            seeds.add(d)
    return seeds


# Must match fuzz_correlator.cpp.
CORR_ADDRS = ["192.0.2.10", "192.0.2.20", "203.0.113.1", "198.51.100.25", "198.51.100.80",
              "2001:db8:a::10", "2001:db8:3::1", "2001:db8::25"]
CORR_PORTS = [25, 587, 3128, 8080, 1080, 443, 40000, 40001, 2525, 8888]
CORR_STREAMS = 64


def corr_endpoint(w, addr, port):
    w.int_range(0, len(CORR_ADDRS) - 1, CORR_ADDRS.index(addr))
    if port in CORR_PORTS:
        w.boolean(True)
        w.int_range(0, len(CORR_PORTS) - 1, CORR_PORTS.index(port))
    else:
        w.boolean(False)
        w.u16(port)


def correlator_seed(segs):
    w = FdpWriter()
    # Config: generous caps, so the capture plays out as recorded.
    w.int_range(1, 64, 64)      # max_flows
    w.int_range(1, 16, 16)      # max_live_flows
    w.int_range(1, 4000, 4000)  # max_frame_notes
    w.int_range(1, 64, 64)      # max_streams
    w.int_range(0, 4, 4)        # max_dns_names
    w.int_range(1, 6, 6)        # max_candidates
    w.boolean(True)             # content_detection
    w.boolean(True)             # pair_window 30 s
    w.boolean(False)            # no extra mail port

    opened = {}
    next_seq = {}
    last_time = None
    for s in segs:
        sid = s["stream"]
        if sid >= CORR_STREAMS or s["src"] not in CORR_ADDRS or s["dst"] not in CORR_ADDRS:
            continue
        src, dst = (s["src"], s["sport"]), (s["dst"], s["dport"])
        if sid not in opened:
            # The opener is the SYN sender (or the first sender); ISNs from the capture.
            client, server = (dst, src) if (s["flags"] & 0x12) == 0x12 else (src, dst)
            isn = {}
            for t in segs:
                if t["stream"] == sid:
                    key = (t["src"], t["sport"])
                    isn.setdefault(key, t["seq"])
            w.int_range(0, 11, 0)
            w.int_range(0, 63, sid)
            corr_endpoint(w, *client)
            corr_endpoint(w, *server)
            w.u32(isn.get(client, 0))
            w.u32(isn.get(server, 0))
            w.boolean(False)  # no synthetic handshake: the capture's own follows
            opened[sid] = client
            next_seq[(sid, True)] = isn.get(client, 0)
            next_seq[(sid, False)] = isn.get(server, 0)
        from_client = src == opened[sid]
        if last_time is not None:
            ms = int(round((s["time"] - last_time) * 1000))
            while ms > 0:
                step = min(ms, 999)
                w.int_range(0, 11, 9)
                w.int_range(0, 63, sid)
                w.boolean(from_client)
                w.int_range(-1, 1000, step)
                w.int_range(0, 3, 0)
                ms -= step
        last_time = s["time"]
        key = (sid, from_client)
        p = s["payload"]
        if not p:
            w.int_range(0, 11, 10)
            w.int_range(0, 63, sid)
            w.boolean(from_client)
            w.u8(s["flags"] & 0x1F)
            if s["flags"] & 0x03:
                next_seq[key] = (next_seq[key] + 1) & 0xFFFFFFFF
            continue
        if s["seq"] != next_seq[key]:
            continue  # retransmission: the target makes its own
        for c in chunks(p, 599):
            w.int_range(0, 11, 1)
            w.int_range(0, 63, sid)
            w.boolean(from_client)
            w.int_range(0, 3, 0)  # payload from the input
            w.string(c, 600)
        next_seq[key] = (next_seq[key] + len(p)) & 0xFFFFFFFF
    return w.data()


def write(outdir, target, seeds):
    d = os.path.join(outdir, target)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    total = 0
    for s in sorted(seeds):
        with open(os.path.join(d, hashlib.sha1(s).hexdigest()), "wb") as f:
            f.write(s)
        total += len(s)
    print("%-11s %4d seeds %8d bytes" % (target, len(seeds), total))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--captures", default=os.path.join(ROOT, "captures"))
    ap.add_argument("--out", default=os.path.join(HERE, "corpus"))
    args = ap.parse_args()
    if shutil.which("tshark") is None:
        sys.exit("make-seeds.py: tshark not found")
    seeds = {"http": set(), "socks": set(), "lines": set(), "smtp": set(), "correlator": set()}
    for path in sorted(glob.glob(os.path.join(args.captures, "*.pcap"))):
        segs = read_capture(path)
        streams = streams_of(segs)
        seeds["http"] |= http_seeds(streams)
        seeds["socks"] |= socks_seeds(streams)
        seeds["lines"] |= lines_seeds(streams)
        seeds["smtp"] |= smtp_seeds(streams)
        c = correlator_seed(segs)
        if len(c) <= MAX_SEED:
            seeds["correlator"].add(c)
    for target in ("lines", "smtp"):
        seeds[target] = set(sorted(seeds[target], key=lambda d: (len(d), d))[:MAX_STREAM_SEEDS])
    for target, s in seeds.items():
        write(args.out, target, s)


if __name__ == "__main__":
    main()
