#!/usr/bin/env python3
"""Re-encapsulate an Ethernet lab capture, packet for packet and with the
same timing, the ways captures reach analysts: overlays (VXLAN, Geneve,
GTP-U), GRE (carrying IP or Ethernet) and ERSPAN II and III from switches,
MPLS (one and two labels, and an Ethernet pseudowire with a control word),
PPPoE and PPP, 802.11 with and without radiotap, IP in IP (IPv4-in-IPv4,
6in4), IPv4 and IPv6 fragments, VLAN tags, Linux cooked capture v1 and v2,
raw IP, BSD loopback, a pcapng whose two interfaces have different link
types, and every packet followed by an ICMP error quoting it.

    tests/captures/encapsulate.py IN.pcap OUTDIR [VARIANT...]

writes OUTDIR/<variant>.pcap (or .pcapng) for every variant (default: all),
and prints, per variant, where each frame of the input went: the frame of
the variant that completes its IP packet (for fragments, the last one).
Frames that are not IP (ARP) are left out of every variant, the plain
Ethernet one included, so that the others can be compared with it.

Outer headers use addresses of their own (10.255.0.0/24 and
02:00:00:00:ff:xx), fixed ports, VNI 4242 and MPLS labels 100 and 200, so
they never collide with the inner traffic. The fragment variants cut every
IP packet with at least 16 bytes of payload in two, at an 8-byte boundary
(RFC 791 §3.2, RFC 8200 §4.5). Checksums of the outer IPv4 headers are
right; outer UDP checksums are 0 (allowed over IPv4, RFC 768).

Standard library only. Used by check_encapsulations.py (ctest
"encapsulations"); the files are derived test inputs, not committed.
"""

import os
import struct
import sys

LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_PPP, LINKTYPE_RAW = 0, 1, 9, 101
LINKTYPE_IEEE802_11, LINKTYPE_LOOP, LINKTYPE_SLL = 105, 108, 113
LINKTYPE_RADIOTAP, LINKTYPE_SLL2 = 127, 276
ETH_IPV4, ETH_IPV6, ETH_TEB = 0x0800, 0x86DD, 0x6558
BSD_AF = {ETH_IPV4: 2, ETH_IPV6: 24}  # AF_INET, and a value Wireshark reads as AF_INET6
PPP_PROTO = {ETH_IPV4: 0x0021, ETH_IPV6: 0x0057}

OUTER_MAC_A = bytes.fromhex("02000000ff01")
OUTER_MAC_B = bytes.fromhex("02000000ff02")
OUTER_IP_A, OUTER_IP_B = bytes([10, 255, 0, 1]), bytes([10, 255, 0, 2])


# -- pcap input and output -----------------------------------------------------

def read_pcap(path):
    """(linktype, [((sec, frac, orig_len), frame bytes)], nanosecond) of a pcap file."""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    formats = {b"\xd4\xc3\xb2\xa1": ("<", False), b"\xa1\xb2\xc3\xd4": (">", False),
               b"\x4d\x3c\xb2\xa1": ("<", True), b"\xa1\xb2\x3c\x4d": (">", True)}
    if magic not in formats:
        raise ValueError("%s: not a pcap file" % path)
    e, nano = formats[magic]
    linktype, = struct.unpack_from(e + "I", data, 20)
    frames, off = [], 24
    while off + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack_from(e + "IIII", data, off)
        frames.append(((sec, frac, orig), data[off + 16:off + 16 + incl]))
        off += 16 + incl
    return linktype & 0xFFFF, frames, nano


def write_pcap(path, linktype, records, nano):
    """records: [((sec, frac, orig_len), bytes)]."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D if nano else 0xA1B2C3D4, 2, 4, 0, 0, 262144,
                            linktype))
        for (sec, frac, orig), body in records:
            f.write(struct.pack("<IIII", sec, frac, len(body), orig))
            f.write(body)


def _block(btype, body):
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def write_pcapng(path, interfaces, records, nano):
    """interfaces: [linktype]; records: [((sec, frac, orig_len), bytes, interface)]."""
    tsresol = 9 if nano else 6
    with open(path, "wb") as f:
        f.write(_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
        for lt in interfaces:
            # if_tsresol option (9), then opt_endofopt.
            opts = struct.pack("<HHB3x", 9, 1, tsresol) + struct.pack("<HH", 0, 0)
            f.write(_block(1, struct.pack("<HHI", lt, 0, 262144) + opts))
        for (sec, frac, orig), body, iface in records:
            ts = sec * 10 ** tsresol + frac
            f.write(_block(6, struct.pack("<IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(body), orig)
                           + body))


# -- headers -----------------------------------------------------------------------

def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4_header(proto, payload_len, src=OUTER_IP_A, dst=OUTER_IP_B, ident=0, frag=0, ttl=64):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, ident, frag, ttl, proto, 0, src, dst)
    return h[:10] + struct.pack("!H", checksum(h)) + h[12:]


def outer_ipv4(proto, payload):
    return ipv4_header(proto, len(payload)) + payload


def udp(sport, dport, payload):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def eth(ethertype, payload, macs=OUTER_MAC_B + OUTER_MAC_A):
    return macs + struct.pack("!H", ethertype) + payload


def gre(proto, payload, seq=None):
    if seq is None:
        return struct.pack("!HH", 0, proto) + payload
    return struct.pack("!HHI", 0x1000, proto, seq) + payload  # S bit: a sequence number follows


def mpls(labels, payload):
    out = b""
    for i, label in enumerate(labels):
        bottom = 1 if i == len(labels) - 1 else 0
        out += struct.pack("!I", label << 12 | bottom << 8 | 64)
    return out + payload


def wlan_header(macs):
    # Data frame to the AP (To DS): addr1 BSSID, addr2 source, addr3 destination.
    dst, src = macs[:6], macs[6:12]
    return struct.pack("<BBH", 0x08, 0x01, 0) + dst + src + dst + struct.pack("<H", 0)


def llc_snap(ethertype):
    return b"\xaa\xaa\x03\x00\x00\x00" + struct.pack("!H", ethertype)


def sll_address(macs):
    return macs[6:12] + b"\0\0"  # the sender's MAC, padded to 8 bytes


# -- fragments -------------------------------------------------------------------

def ipv4_fragments(ip):
    """The IPv4 packet cut in two at an 8-byte boundary, or [ip] when too short."""
    ihl = (ip[0] & 0x0F) * 4
    total, = struct.unpack_from("!H", ip, 2)
    payload = ip[ihl:total]
    flags_off, = struct.unpack_from("!H", ip, 6)
    if len(payload) < 16 or flags_off & 0x3FFF:
        return [ip]
    cut = (len(payload) // 2) // 8 * 8
    out = []
    for off, part, more in ((0, payload[:cut], 1), (cut, payload[cut:], 0)):
        h = bytearray(ip[:ihl])
        struct.pack_into("!H", h, 2, ihl + len(part))
        struct.pack_into("!H", h, 6, more << 13 | off // 8)  # DF cleared: it is fragmented
        struct.pack_into("!H", h, 10, 0)
        struct.pack_into("!H", h, 10, checksum(bytes(h)))
        out.append(bytes(h) + part)
    return out


def ipv6_fragments(ip, ident):
    """The IPv6 packet (without extension headers) cut in two, or [ip]."""
    plen, = struct.unpack_from("!H", ip, 4)
    nxt = ip[6]
    payload = ip[40:40 + plen]
    if len(payload) < 16 or nxt in (0, 43, 44, 50, 51, 60):
        return [ip]
    cut = (len(payload) // 2) // 8 * 8
    out = []
    for off, part, more in ((0, payload[:cut], 1), (cut, payload[cut:], 0)):
        h = bytearray(ip[:40])
        struct.pack_into("!H", h, 4, 8 + len(part))
        h[6] = 44
        frag = struct.pack("!BBHI", nxt, 0, off | more, ident)
        out.append(bytes(h) + frag + part)
    return out


def icmp_error(ip, ethertype):
    """An ICMP (or ICMPv6) destination-unreachable message from the packet's
    destination back to its source, quoting the packet's start (RFC 792,
    RFC 4443 §3.1): what Wireshark dissects with its error-packet flag set."""
    if ethertype == ETH_IPV4:
        src, dst = ip[16:20], ip[12:16]
        body = struct.pack("!BBHI", 3, 3, 0, 0) + ip[:68]
        body = body[:2] + struct.pack("!H", checksum(body)) + body[4:]
        return ipv4_header(1, len(body), src=src, dst=dst) + body
    src, dst = ip[24:40], ip[8:24]
    body = struct.pack("!BBHI", 1, 4, 0, 0) + ip[:88]
    pseudo = src + dst + struct.pack("!I3xB", len(body), 58)
    body = body[:2] + struct.pack("!H", checksum(pseudo + body)) + body[4:]
    return struct.pack("!IHBB", 0x60000000, len(body), 58, 64) + src + dst + body


# -- variants --------------------------------------------------------------------
# Each builds, from (MAC addresses, ethertype, IP packet, packet index), the
# list of (frame bytes, interface[, completes]) that carry it; the last one
# not marked completes=False completes it.

def one(build, iface=0):
    return lambda m, t, ip, i: [(build(m, t, ip), iface)]


def vxlan(m, t, ip):
    return eth(ETH_IPV4, outer_ipv4(17, udp(49152, 4789, struct.pack("!II", 0x08000000, 4242 << 8)
                                            + m + struct.pack("!H", t) + ip)))


def geneve(m, t, ip):
    return eth(ETH_IPV4, outer_ipv4(17, udp(49152, 6081, struct.pack("!BBHI", 0, 0, ETH_TEB, 4242 << 8)
                                            + m + struct.pack("!H", t) + ip)))


def gtpu(m, t, ip):
    return eth(ETH_IPV4, outer_ipv4(17, udp(2152, 2152, struct.pack("!BBHI", 0x30, 0xFF, len(ip), 0x1234)
                                            + ip)))


def erspan2(m, t, ip, i):
    # Version 1 (type II), VLAN 0, COS 0, En 0, T 0, session 7; index 0.
    hdr = struct.pack("!HHI", 1 << 12, 7, 0)
    return eth(ETH_IPV4, outer_ipv4(47, gre(0x88BE, hdr + m + struct.pack("!H", t) + ip, seq=i)))


def erspan3(m, t, ip, i):
    # Version 2 (type III), session 7, a timestamp, no platform-specific header.
    hdr = struct.pack("!HHIHH", 2 << 12, 7, i * 1000, 0, 0)
    return eth(ETH_IPV4, outer_ipv4(47, gre(0x22EB, hdr + m + struct.pack("!H", t) + ip, seq=i)))


VARIANTS = {
    "ethernet": (LINKTYPE_ETHERNET, one(lambda m, t, ip: m + struct.pack("!H", t) + ip)),
    "vlan": (LINKTYPE_ETHERNET, one(lambda m, t, ip: m + struct.pack("!HHH", 0x8100, 100, t) + ip)),
    "qinq": (LINKTYPE_ETHERNET,
             one(lambda m, t, ip: m + struct.pack("!HHHHH", 0x88A8, 200, 0x8100, 100, t) + ip)),
    "sll": (LINKTYPE_SLL, one(lambda m, t, ip: struct.pack("!HHH", 0, 1, 6) + sll_address(m)
                              + struct.pack("!H", t) + ip)),
    "sll2": (LINKTYPE_SLL2, one(lambda m, t, ip: struct.pack("!HHIHBB", t, 0, 1, 1, 0, 6)
                                + sll_address(m) + ip)),
    "raw": (LINKTYPE_RAW, one(lambda m, t, ip: ip)),
    "null": (LINKTYPE_NULL, one(lambda m, t, ip: struct.pack("<I", BSD_AF[t]) + ip)),
    "loop": (LINKTYPE_LOOP, one(lambda m, t, ip: struct.pack("!I", BSD_AF[t]) + ip)),
    "vxlan": (LINKTYPE_ETHERNET, one(vxlan)),
    "geneve": (LINKTYPE_ETHERNET, one(geneve)),
    "gre-ip": (LINKTYPE_ETHERNET, one(lambda m, t, ip: eth(ETH_IPV4, outer_ipv4(47, gre(t, ip))))),
    "gre-eth": (LINKTYPE_ETHERNET,
                one(lambda m, t, ip: eth(ETH_IPV4, outer_ipv4(47, gre(ETH_TEB, m + struct.pack("!H", t) + ip))))),
    "erspan2": (LINKTYPE_ETHERNET, lambda m, t, ip, i: [(erspan2(m, t, ip, i), 0)]),
    "erspan3": (LINKTYPE_ETHERNET, lambda m, t, ip, i: [(erspan3(m, t, ip, i), 0)]),
    "mpls": (LINKTYPE_ETHERNET, one(lambda m, t, ip: eth(0x8847, mpls([100], ip), m))),
    "mpls2": (LINKTYPE_ETHERNET, one(lambda m, t, ip: eth(0x8847, mpls([100, 200], ip), m))),
    "mpls-pw": (LINKTYPE_ETHERNET,  # Ethernet pseudowire with a control word (RFC 4448)
                one(lambda m, t, ip: eth(0x8847, mpls([100, 200], b"\0\0\0\0" + m + struct.pack("!H", t) + ip)))),
    "pppoe": (LINKTYPE_ETHERNET,
              one(lambda m, t, ip: eth(0x8864, struct.pack("!BBHHH", 0x11, 0, 1, 2 + len(ip), PPP_PROTO[t]) + ip,
                                       m))),
    "ppp": (LINKTYPE_PPP, one(lambda m, t, ip: struct.pack("!BBH", 0xFF, 0x03, PPP_PROTO[t]) + ip)),
    "wlan-radiotap": (LINKTYPE_RADIOTAP,
                      one(lambda m, t, ip: struct.pack("<BBHI", 0, 0, 8, 0) + wlan_header(m) + llc_snap(t) + ip)),
    "wlan": (LINKTYPE_IEEE802_11, one(lambda m, t, ip: wlan_header(m) + llc_snap(t) + ip)),
    # IPv4 in IPv4 (protocol 4), or 6in4 (protocol 41) for IPv6 packets.
    "ip-in-ip": (LINKTYPE_ETHERNET,
                 one(lambda m, t, ip: eth(ETH_IPV4, outer_ipv4(4 if t == ETH_IPV4 else 41, ip)))),
    "gtpu": (LINKTYPE_ETHERNET, one(gtpu)),
    "ipv4-fragments": (LINKTYPE_ETHERNET,
                       lambda m, t, ip, i: [(m + struct.pack("!H", t) + f, 0)
                                            for f in (ipv4_fragments(ip) if t == ETH_IPV4 else [ip])]),
    "ipv6-fragments": (LINKTYPE_ETHERNET,
                       lambda m, t, ip, i: [(m + struct.pack("!H", t) + f, 0)
                                            for f in (ipv6_fragments(ip, i + 1) if t == ETH_IPV6 else [ip])]),
    # Every packet followed by an ICMP error that quotes it: the quoted TCP
    # headers are not segments of the connection.
    "icmp-errors": (LINKTYPE_ETHERNET,
                    lambda m, t, ip, i: [(m + struct.pack("!H", t) + ip, 0),
                                         (m[6:12] + m[:6] + struct.pack("!H", t) + icmp_error(ip, t), 0, False)]),
    # Interface 0 Ethernet, interface 1 raw IP: each packet goes to one of
    # them by its IP version's source address, so every connection has
    # frames on both.
    "pcapng-mixed": ("pcapng",
                     lambda m, t, ip, i: [((m + struct.pack("!H", t) + ip, 0) if (ip[15 if t == ETH_IPV4 else 23] % 2)
                                           else (ip, 1))]),
}
PCAPNG_INTERFACES = {"pcapng-mixed": [LINKTYPE_ETHERNET, LINKTYPE_RAW]}


def ip_packets(frames):
    """The IP packets of an Ethernet capture: (record, MACs, ethertype, IP packet)."""
    out = []
    for rec, frame in frames:
        if len(frame) < 14:
            continue
        ethertype, = struct.unpack_from("!H", frame, 12)
        if ethertype not in (ETH_IPV4, ETH_IPV6):
            continue
        ip = frame[14:]
        # Cut Ethernet padding: the IP length says where the packet ends.
        if ethertype == ETH_IPV4 and len(ip) >= 4:
            ip = ip[:struct.unpack_from("!H", ip, 2)[0]]
        elif ethertype == ETH_IPV6 and len(ip) >= 6:
            ip = ip[:40 + struct.unpack_from("!H", ip, 4)[0]]
        out.append((rec, frame[:12], ethertype, ip))
    return out


def encapsulate(src, outdir, variants=None):
    """Writes the variants of capture `src` into outdir; returns
    {variant: (path, [variant frame number of each input IP packet])}."""
    linktype, frames, nano = read_pcap(src)
    if linktype != LINKTYPE_ETHERNET:
        raise ValueError("%s: link type %d, expected Ethernet" % (src, linktype))
    packets = ip_packets(frames)
    result = {}
    for name in variants or VARIANTS:
        lt, build = VARIANTS[name]
        records, where = [], []
        for i, (rec, macs, ethertype, ip) in enumerate(packets):
            sec, frac, orig = rec
            for body, iface, *completes in build(macs, ethertype, ip, i):
                records.append(((sec, frac, len(body)), body, iface))
                if completes != [False]:
                    last = len(records)
            where.append(last)
        ext = "pcapng" if lt == "pcapng" else "pcap"
        path = os.path.join(outdir, "%s.%s" % (name, ext))
        if lt == "pcapng":
            write_pcapng(path, PCAPNG_INTERFACES[name], records, nano)
        else:
            write_pcap(path, lt, [(r, b) for r, b, _ in records], nano)
        result[name] = (path, where)
    return result


def main(argv):
    if len(argv) < 3:
        print(__doc__.split("\n\n")[1].strip(), file=sys.stderr)
        return 2
    src, outdir, names = argv[1], argv[2], argv[3:]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        print("unknown variant(s) %s; known: %s" % (", ".join(unknown), ", ".join(VARIANTS)), file=sys.stderr)
        return 2
    os.makedirs(outdir, exist_ok=True)
    for name, (path, where) in encapsulate(src, outdir, names or None).items():
        print("%s\t%s\t%s" % (name, path, ",".join(map(str, where))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
