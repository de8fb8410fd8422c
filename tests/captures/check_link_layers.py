#!/usr/bin/env python3
"""The same traffic seen through any supported link layer gives the same
smtp-over-http output.

The post-dissector parses each frame's own bytes: Ethernet II frames of
IPv4 and TCP take an inline shortcut, every other frame the general parser
(plugin/core/frame_parse.{h,cpp}). For some bundled Ethernet captures, this
rewrites every IP frame into each other link layer the plugin supports
(802.1Q and 802.1ad tags, Linux cooked v1 and v2, raw IP, BSD loopback in
host and in network byte order), and compares `-2 -T fields` of
frame.number, tcp.stream and the contract fields with those of the same IP
frames on plain Ethernet. Frames that are not IP (ARP) are left out of
every variant, the reference included, so that frame numbers line up.

The rewritten captures are derived test inputs, made here from the lab
captures; they are not committed. Fails when a variant differs, or when
the reference shows no smtp-over-http at all.

Standard library only.
"""

import argparse
import os
import struct
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tshark_env import CONTRACT_FIELDS, TsharkEnv, TsharkError  # noqa: E402

# Captures covering a CONNECT tunnel with its relay, SOCKS, an absolute-URI
# relay and IPv6.
CAPTURES = ["connect_ip_tinyproxy.pcap", "socks5.pcap", "post_relay.pcap", "ipv6.pcap"]

LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_RAW = 0, 1, 101
LINKTYPE_LOOP, LINKTYPE_SLL, LINKTYPE_SLL2 = 108, 113, 276
ETH_IPV4, ETH_IPV6 = 0x0800, 0x86DD
# BSD address families: AF_INET, and one of the values Wireshark reads as AF_INET6.
BSD_AF = {ETH_IPV4: 2, ETH_IPV6: 24}


def read_pcap(path):
    """(linktype, [(record header, frame bytes)]) of a little-endian
    microsecond pcap file."""
    with open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack_from("<I", data, 0)
    if magic != 0xA1B2C3D4:
        raise ValueError("%s: not a little-endian microsecond pcap file" % path)
    linktype, = struct.unpack_from("<I", data, 20)
    frames, off = [], 24
    while off + 16 <= len(data):
        sec, usec, incl, orig = struct.unpack_from("<IIII", data, off)
        frames.append(((sec, usec, orig), data[off + 16:off + 16 + incl]))
        off += 16 + incl
    return linktype, frames


def write_pcap(path, linktype, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype))
        for (sec, usec, orig), body, grown in frames:
            f.write(struct.pack("<IIII", sec, usec, len(body), orig + grown))
            f.write(body)


def ip_frames(frames):
    """The IP frames of an Ethernet capture: (record, MAC addresses, ethertype, IP packet)."""
    out = []
    for rec, eth in frames:
        if len(eth) < 14:
            continue
        ethertype, = struct.unpack_from(">H", eth, 12)
        if ethertype in (ETH_IPV4, ETH_IPV6):
            out.append((rec, eth[:12], ethertype, eth[14:]))
    return out


def sll_address(macs):
    return macs[6:12] + b"\0\0"  # the sender's MAC, padded to 8 bytes


# Each variant: (link type, function of (MACs, ethertype, IP packet) -> frame bytes).
VARIANTS = {
    "ethernet": (LINKTYPE_ETHERNET, lambda m, t, ip: m + struct.pack(">H", t) + ip),
    "vlan": (LINKTYPE_ETHERNET, lambda m, t, ip: m + struct.pack(">HHH", 0x8100, 100, t) + ip),
    "qinq": (LINKTYPE_ETHERNET,
             lambda m, t, ip: m + struct.pack(">HHHHH", 0x88A8, 200, 0x8100, 100, t) + ip),
    "sll": (LINKTYPE_SLL, lambda m, t, ip: struct.pack(">HHH", 0, 1, 6) + sll_address(m)
            + struct.pack(">H", t) + ip),
    "sll2": (LINKTYPE_SLL2, lambda m, t, ip: struct.pack(">HHIHBB", t, 0, 1, 1, 0, 6)
             + sll_address(m) + ip),
    "raw": (LINKTYPE_RAW, lambda m, t, ip: ip),
    "null": (LINKTYPE_NULL, lambda m, t, ip: struct.pack("<I", BSD_AF[t]) + ip),
    "loop": (LINKTYPE_LOOP, lambda m, t, ip: struct.pack(">I", BSD_AF[t]) + ip),
}


def fields_output(env, path, fields):
    args = ["-n", "-r", env.stage(path), "-2", "-T", "fields", "-E", "occurrence=a",
            "-E", "aggregator=,"]
    for f in ["frame.number", "tcp.stream"] + fields:
        args += ["-e", f]
    out, _ = env.run(args)
    return out.splitlines()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--plugin", required=True)
    ap.add_argument("--captures", required=True)
    args = ap.parse_args()

    failures = []
    compared = 0
    with TsharkEnv(args.plugin) as env, tempfile.TemporaryDirectory(prefix="soh-links-") as tmp:
        os.chmod(tmp, 0o755)
        fields = [f for f in CONTRACT_FIELDS if f in env.verify_plugin()]
        for name in CAPTURES:
            linktype, frames = read_pcap(os.path.join(args.captures, name))
            if linktype != LINKTYPE_ETHERNET:
                failures.append("%s: link type %d, expected Ethernet" % (name, linktype))
                continue
            ips = ip_frames(frames)
            outputs = {}
            for variant, (lt, build) in VARIANTS.items():
                rewritten = []
                for rec, macs, ethertype, ip in ips:
                    body = build(macs, ethertype, ip)
                    rewritten.append((rec, body, len(body) - (14 + len(ip))))
                path = os.path.join(tmp, "%s-%s.pcap" % (variant, name))
                write_pcap(path, lt, rewritten)
                os.chmod(path, 0o644)
                outputs[variant] = fields_output(env, path, fields)
            reference = outputs["ethernet"]
            legs = sum(1 for line in reference if line.split("\t")[2])
            if legs == 0:
                failures.append("%s: no smtp-over-http frame on Ethernet" % name)
                continue
            for variant, lines in outputs.items():
                if variant == "ethernet":
                    continue
                compared += 1
                if lines != reference:
                    diff = [(a, b) for a, b in zip(reference, lines) if a != b]
                    first = diff[0] if diff else ("%d lines" % len(reference), "%d lines" % len(lines))
                    failures.append("%s as %s differs from Ethernet:\n  ethernet: %s\n  %s: %s"
                                    % (name, variant, first[0], variant, first[1]))
            print("link layers: %s: %d frames, %d marked, same output in %d link layers"
                  % (name, len(reference), legs, len(VARIANTS) - 1))
    if failures:
        print("\n".join("FAIL " + f for f in failures), file=sys.stderr)
        return 1
    print("link layers: %d comparisons, all identical" % compared)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except TsharkError as e:
        print("link layers: %s" % e, file=sys.stderr)
        sys.exit(2)
