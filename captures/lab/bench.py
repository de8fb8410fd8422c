#!/usr/bin/python3
"""Build a large benchmark capture from the committed lab captures.

  bench.py OUTDIR [SCALE] [--mix benign|incidents]
  bench.py --share LABELS [PCAP]   # frames in incident legs, counted with tshark

Each seed capture is copied many times.  Every copy gets its own proxy host
address (203.0.113.1-250, 2001:db8:3::1-250), its own client addresses and
its own client/ephemeral ports (allocated per proxy address, so no 5-tuple
repeats anywhere), and its own start time; IP, TCP and UDP checksums are
recomputed.  Copies are merged in time order.  Servers (MTA, web, DNS) keep
their addresses, as in real life.  SCALE multiplies the number of copies and
the time span, so the traffic density stays the same and growth can be
measured.

Writes OUTDIR/bench-xSCALE.pcap and OUTDIR/bench-xSCALE.labels.json (the
seeds' labels with every endpoint rewritten like the packets).

--mix incidents writes OUTDIR/bench-incidents-xSCALE.pcap and its labels
instead: about two thirds of the frames in incident legs (tunnels and relay
legs: mostly CONNECT to port 25, some SOCKS and POST), the rest benign
(HTTPS and web fetches through the proxies, DNS, direct SMTP).  Copies of
the two concurrent captures start in pairs at the same moment through two
proxy addresses.  The default mix (mostly benign) is unchanged by it.

--share LABELS reads LABELS' capture with tshark and prints its packets,
the frames of the TCP streams of the labels' tunnel and relay endpoints
(their number and share), the number of incidents, and how many proxy
addresses have incident tunnels open at the same moment; exits 1 if the
number of TCP streams is not the labels' tcp_streams.  With PCAP (a part of
that capture, e.g. its first packets cut with editcap), the same for PCAP,
without the checks: legs outside it are not counted.
Standard library only; no root needed.
"""
import array
import heapq
import ipaddress
import json
import os
import random
import struct
import subprocess
import sys

CAPDIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (seed case, copies at SCALE 1)
BENIGN_SEEDS = [("benign_only", 1500)]
INCIDENT_SEEDS = [("connect_ip_tinyproxy", 10), ("connect_ip_squid", 10), ("connect_hostname", 10),
                  ("mail_ports", 10), ("refused", 10), ("post_relay", 10), ("socks5", 10),
                  ("socks4", 10), ("ipv6", 10), ("odd_port_proxy", 10), ("malformed_request", 10),
                  ("concurrent_pairing", 2)]
# The incident-heavy mix (--mix incidents): 1,490 copies, about 266,000
# packets and 3,436 incidents at SCALE 1, about 65% of the frames in
# incident legs.  Concurrent copies come in pairs (an even number of each).
INCIDENTS_MIX_BENIGN = [("benign_only", 292)]
INCIDENTS_MIX_INCIDENT = [("connect_ip_tinyproxy", 500), ("connect_ip_squid", 250),
                          ("concurrent_pairing", 24), ("concurrent_mixed", 24),
                          ("socks5", 100), ("socks4", 100), ("post_relay", 200)]
MIXES = {"benign": ("bench-x%d", BENIGN_SEEDS, INCIDENT_SEEDS),
         "incidents": ("bench-incidents-x%d", INCIDENTS_MIX_BENIGN, INCIDENTS_MIX_INCIDENT)}
PAIR_JITTER = 0.05    # seconds between the starts of a pair of concurrent copies
SPAN = 600.0          # seconds of traffic at SCALE 1
EPOCH = 1767225600    # 2026-01-01 00:00:00 UTC

PROXY4 = ipaddress.ip_address("203.0.113.1").packed
PROXY6 = ipaddress.ip_address("2001:db8:3::1").packed
CLIENT4_NET = b"\xc0\x00\x02"            # 192.0.2.0/24
CLIENT6_NET = ipaddress.ip_address("2001:db8:a::").packed[:14]


def read_pcap(path):
    with open(path, "rb") as f:
        hdr = f.read(24)
        magic = struct.unpack("<I", hdr[:4])[0]
        if magic == 0xa1b2c3d4:
            endian, nano = "<", False
        elif magic == 0xa1b23c4d:
            endian, nano = "<", True
        else:
            raise SystemExit("%s: not a little-endian pcap" % path)
        linktype = struct.unpack(endian + "I", hdr[20:24])[0]
        if linktype != 1:
            raise SystemExit("%s: link type %d, want Ethernet" % (path, linktype))
        pkts = []
        while True:
            ph = f.read(16)
            if len(ph) < 16:
                break
            sec, frac, incl, orig = struct.unpack(endian + "IIII", ph)
            data = f.read(incl)
            pkts.append((sec + frac / (1e9 if nano else 1e6), data))
    return pkts


def csum(data):
    """Internet checksum, summed in native byte order: store it with "=H"."""
    if len(data) % 2:
        data += b"\0"
    s = sum(array.array("H", data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff


class Parsed:
    __slots__ = ("ts", "data", "v6", "l3", "l4", "proto", "src", "dst", "sport", "dport", "syn")


def parse(ts, data):
    p = Parsed()
    p.ts, p.data = ts, data
    etype = struct.unpack("!H", data[12:14])[0]
    if etype == 0x0800:
        p.v6, p.l3 = False, 14
        ihl = (data[14] & 15) * 4
        p.proto = data[23]
        p.src, p.dst = data[26:30], data[30:34]
        p.l4 = 14 + ihl
    elif etype == 0x86DD:
        p.v6, p.l3 = True, 14
        p.proto = data[20]
        p.src, p.dst = data[22:38], data[38:54]
        p.l4 = 54
    else:
        return None
    if p.proto not in (6, 17):
        return None
    p.sport, p.dport = struct.unpack("!HH", data[p.l4:p.l4 + 4])
    p.syn = p.proto == 6 and (data[p.l4 + 13] & 0x12) == 0x02
    return p


def client_endpoints(pkts):
    """Endpoints that initiate: TCP SYN senders and DNS query senders."""
    eps = set()
    for p in pkts:
        if p.syn or (p.proto == 17 and p.dport == 53):
            eps.add((p.src, p.sport))
    return eps


class Allocator:
    def __init__(self):
        self.next = {}

    def port(self, ip):
        n = self.next.get(ip, 1024)
        if n > 65535:
            raise SystemExit("out of ports for %s: lower SCALE" % ipaddress.ip_address(ip))
        self.next[ip] = n + 1
        return n


def make_copy(k, pkts, clients, alloc):
    """Address and port maps for copy k."""
    slot = k % 250
    ipmap = {PROXY4: bytes([203, 0, 113, 1 + slot]),
             PROXY6: PROXY6[:15] + bytes([1 + slot])}
    for p in pkts:
        for a in (p.src, p.dst):
            if a in ipmap:
                continue
            if len(a) == 4 and a[:3] == CLIENT4_NET:
                ipmap[a] = CLIENT4_NET + bytes([1 + (a[3] + 7 * k) % 250])
            elif len(a) == 16 and a[:14] == CLIENT6_NET:
                ipmap[a] = CLIENT6_NET + struct.pack("!H", 1 + (k * 131 + a[15]) % 65000)
    portmap = {}
    for ip, port in sorted(clients):
        newip = ipmap.get(ip, ip)
        portmap[(ip, port)] = alloc.port(newip)
    return ipmap, portmap


def rewrite(p, ipmap, portmap):
    d = bytearray(p.data)
    src, dst = ipmap.get(p.src, p.src), ipmap.get(p.dst, p.dst)
    sport = portmap.get((p.src, p.sport), p.sport)
    dport = portmap.get((p.dst, p.dport), p.dport)
    l4 = p.l4
    if p.v6:
        d[22:38], d[38:54] = src, dst
        plen = struct.unpack("!H", d[18:20])[0]
        l4len = plen
    else:
        d[26:30], d[30:34] = src, dst
        d[24:26] = b"\0\0"
        d[24:26] = struct.pack("=H", csum(bytes(d[14:l4])))
        tot = struct.unpack("!H", d[16:18])[0]
        l4len = tot - (l4 - 14)
    d[l4:l4 + 4] = struct.pack("!HH", sport, dport)
    ck = l4 + (16 if p.proto == 6 else 6)
    d[ck:ck + 2] = b"\0\0"
    seg = bytes(d[l4:l4 + l4len])
    if p.v6:
        pseudo = src + dst + struct.pack("!IxxxB", l4len, p.proto)
    else:
        pseudo = src + dst + struct.pack("!xBH", p.proto, l4len)
    c = csum(pseudo + seg)
    if p.proto == 17 and c == 0:
        c = 0xffff
    d[ck:ck + 2] = struct.pack("=H", c)
    return bytes(d)


def copy_packets(pk, start, k, ipmap, portmap):
    for j, p in enumerate(pk):
        yield start + p.ts, k, j, rewrite(p, ipmap, portmap)


def ep_text(ip, port):
    a = ipaddress.ip_address(ip)
    return ("[%s]:%d" % (a, port)) if a.version == 6 else ("%s:%d" % (a, port))


def map_ep(text, ipmap, portmap):
    host, _, port = text.rpartition(":")
    ip = ipaddress.ip_address(host.strip("[]")).packed
    port = int(port)
    return ep_text(ipmap.get(ip, ip), portmap.get((ip, port), port))


def map_labels(labels, k, ipmap, portmap):
    out_inc, out_ben = [], []
    for inc in labels["incidents"]:
        i = json.loads(json.dumps(inc))
        i["id"] = "c%d-%s-%s" % (k, labels["case"], inc["id"])
        for key in ("client", "proxy"):
            i[key] = map_ep(i[key], ipmap, portmap)
        if i.get("relay"):
            i["relay"] = {x: map_ep(y, ipmap, portmap) for x, y in i["relay"].items()}
        out_inc.append(i)
    for b in labels["benign"] + [dict(r, kind="proxy-origin") for r in labels.get("benign_relays", [])]:
        b = dict(b)
        b["client"] = map_ep(b["client"], ipmap, portmap)
        b["server"] = map_ep(b["server"], ipmap, portmap)
        out_ben.append(b)
    return out_inc, out_ben


def tshark_fields(pcap, fields):
    env = dict(os.environ, LC_ALL="C")
    args = ["tshark", "-n", "-r", pcap, "-T", "fields", "-E", "separator=\t", "-E", "occurrence=f"]
    for x in fields:
        args += ["-e", x]
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit("tshark failed: %s" % r.stderr.strip())
    return r.stdout


def share(labels_path, part=None):
    """Frames in incident legs: the TCP streams (numbered by tshark) whose
    endpoints are an incident's client and proxy (its tunnel) or its
    relay's client and server (its relay leg)."""
    with open(labels_path) as f:
        labels = json.load(f)
    pcap = part or os.path.join(os.path.dirname(labels_path), labels["capture"])
    out = tshark_fields(pcap, ["tcp.stream", "frame.time_relative", "ip.src", "ipv6.src",
                               "tcp.srcport", "ip.dst", "ipv6.dst", "tcp.dstport"])
    packets = 0
    frames = {}      # stream -> frames
    span = {}        # stream -> [first, last] time
    pair = {}        # (endpoint, endpoint), both orders -> stream
    for line in out.splitlines():
        packets += 1
        f = line.split("\t")
        if not f[0]:
            continue
        sid, t = int(f[0]), float(f[1])
        if sid in frames:
            frames[sid] += 1
            span[sid][1] = t
            continue
        frames[sid] = 1
        span[sid] = [t, t]
        a = ep_text(ipaddress.ip_address(f[2] or f[3]).packed, int(f[4]))
        b = ep_text(ipaddress.ip_address(f[5] or f[6]).packed, int(f[7]))
        pair[(a, b)] = pair[(b, a)] = sid
    # the labels' endpoints are written like ep_text writes them
    norm = lambda e: map_ep(e, {}, {})
    legs, tunnels, missing = set(), {}, 0
    for inc in labels["incidents"]:
        tun = pair.get((norm(inc["client"]), norm(inc["proxy"])))
        if tun is None:
            missing += 1
        else:
            legs.add(tun)
            tunnels[tun] = norm(inc["proxy"]).rpartition(":")[0]
        rel = inc.get("relay")
        if rel:
            sid = pair.get((norm(rel["client"]), norm(rel["server"])))
            if sid is None:
                missing += 1
            else:
                legs.add(sid)
    in_legs = sum(frames[s] for s in legs)
    # how many proxy addresses have an incident tunnel open at one moment
    events = sorted([(span[s][0], 0, s) for s in tunnels] + [(span[s][1], 1, s) for s in tunnels])
    open_now, overlapping, most = set(), set(), 0
    for _, end, sid in events:
        if end:
            open_now.discard(sid)
            continue
        others = [o for o in open_now if tunnels[o] != tunnels[sid]]
        if others:
            overlapping.update(others)
            overlapping.add(sid)
        open_now.add(sid)
        most = max(most, len({tunnels[o] for o in open_now}))
    if part:
        print("%d packets, %d frames (%.1f%%) in incident legs"
              % (packets, in_legs, 100.0 * in_legs / max(packets, 1)))
        return 0
    print("%s: %d packets, %d incidents" % (pcap, packets, len(labels["incidents"])))
    print("frames in incident legs: %d (%.1f%%), in %d TCP streams (tunnels and relay legs)"
          % (in_legs, 100.0 * in_legs / max(packets, 1), len(legs)))
    print("incident tunnels: through %d proxy addresses; %d of %d open while one through another "
          "proxy address is (up to %d addresses at once)"
          % (len(set(tunnels.values())), len(overlapping), len(tunnels), most))
    bad = 0
    if missing:
        print("bench.py: %d incident legs of the labels not found in the capture" % missing,
              file=sys.stderr)
        bad = 1
    want = labels.get("tcp_streams")
    print("tshark: %d TCP conversations (expected %s)" % (len(frames), want))
    if want is not None and len(frames) != want:
        print("bench.py: stream count mismatch", file=sys.stderr)
        bad = 1
    return bad


def main(argv):
    if len(argv) in (2, 3) and argv[0] == "--share":
        return share(*argv[1:])
    mix = "benign"
    if "--mix" in argv:
        i = argv.index("--mix")
        if i + 1 >= len(argv) or argv[i + 1] not in MIXES:
            raise SystemExit("--mix must be one of: %s" % ", ".join(MIXES))
        mix = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
    if len(argv) < 1 or argv[0].startswith("-"):
        print(__doc__)
        return 2
    outdir = argv[0]
    scale = int(argv[1]) if len(argv) > 1 else 1
    if scale < 1 or scale > 16:
        raise SystemExit("SCALE must be 1..16")
    name_pattern, benign_seeds, incident_seeds = MIXES[mix]
    os.makedirs(outdir, exist_ok=True)
    rng = random.Random(20260101)
    alloc = Allocator()
    plan = []
    for case, n in benign_seeds + incident_seeds:
        plan += [case] * (n * scale)
    rng.shuffle(plan)
    seeds = {}
    for case in set(plan):
        raw = read_pcap(os.path.join(CAPDIR, case + ".pcap"))
        pk = [p for p in (parse(ts, d) for ts, d in raw) if p]
        t0 = pk[0].ts
        for p in pk:
            p.ts -= t0
        with open(os.path.join(CAPDIR, case + ".labels.json")) as f:
            lab = json.load(f)
        seeds[case] = (pk, client_endpoints(pk), lab)
    span = SPAN * scale
    gens = []
    incidents, benign = [], []
    expected_streams = 0
    waiting = None     # (k, start) of a concurrent copy waiting for its pair
    pairs = 0
    for k, case in enumerate(plan):
        pk, clients, lab = seeds[case]
        ipmap, portmap = make_copy(k, pk, clients, alloc)
        start = EPOCH + rng.uniform(0, span)
        if mix == "incidents" and case.startswith("concurrent_"):
            # two bursts of tunnels at once, through two proxy addresses
            # (k % 250 picks the proxy address)
            if waiting is None:
                waiting = (k, start)
            elif waiting[0] % 250 != k % 250:
                start = waiting[1] + rng.uniform(0, PAIR_JITTER)
                waiting = None
                pairs += 1
        gens.append(copy_packets(pk, start, k, ipmap, portmap))
        inc, ben = map_labels(lab, k, ipmap, portmap)
        incidents += inc
        benign += ben
        expected_streams += len({(p.src, p.sport, p.dst, p.dport) if (p.src, p.sport) in clients
                                 else (p.dst, p.dport, p.src, p.sport) for p in pk if p.proto == 6})
    name = name_pattern % scale
    out = os.path.join(outdir, name + ".pcap")
    n = 0
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 262144, 1))
        for t, _, _, data in heapq.merge(*gens):
            sec = int(t)
            usec = int(round((t - sec) * 1e6))
            if usec >= 1000000:
                sec, usec = sec + 1, usec - 1000000
            f.write(struct.pack("<IIII", sec, usec, len(data), len(data)))
            f.write(data)
            n += 1
    summary = {"case": name, "capture": name + ".pcap", "made_by": "captures/lab/make-bench-capture.sh",
               "scale": scale, "capture_point": "proxy uplink", "legs_visible": ["tunnel", "relay"],
               "packets": n, "copies": len(plan), "tcp_streams": expected_streams,
               "incident_count": len(incidents), "benign_count": len(benign)}
    if mix != "benign":
        summary.update(mix=mix, concurrent_pairs=pairs)
    summary.update(incidents=incidents, benign=benign)
    with open(os.path.join(outdir, name + ".labels.json"), "w") as f:
        json.dump(summary, f, indent=0)
    print("%s: %d packets, %d copies, %d TCP streams expected, %d incidents, %d benign connections"
          % (out, n, len(plan), expected_streams, len(incidents), len(benign)))
    if mix != "benign":
        print("%s: %d pairs of concurrent copies start together through two proxy addresses"
              % (out, pairs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
