#!/usr/bin/env python3
"""The same traffic, however it reached the capture, gives the same
smtp-over-http output.

The plugin sees every TCP segment Wireshark's IP layer hands on, whatever
carried it (plugin/epan/observe.cpp). For lab captures covering a CONNECT
tunnel with its relay, a host-name target resolved by DNS, forty concurrent
tunnels, SOCKS5, an absolute-URI relay, IPv6 and an HTTPS proxy (TLS to the
proxy, decrypted with its key log), encapsulate.py writes every
variant it knows (link layers, overlays, GRE and ERSPAN, MPLS, PPPoE, PPP,
802.11, IP in IP, GTP-U, IPv4 and IPv6 fragments, a pcapng with two link
types, ICMP errors quoting every packet), and this compares, frame by frame, `-T fields` of tcp.stream and
the contract fields with the plain Ethernet capture's, in one pass and in
two. A frame of the plain capture is compared with the frame of the variant
that completes its IP packet (the last fragment), and frame numbers in
field values (connect_in, relay_in) are mapped the same way, and so are
tcp.stream numbers (tcp.stream, tunnel.stream, relay.stream, relay
candidates) where stock Wireshark numbers a variant's streams otherwise;
every other
frame of a variant (ICMP errors, first fragments) must carry nothing of ours.

Prints one line per variant (frames compared, frames marked, legs by kind,
pairing and envelope as the two-pass output states them) and fails on any
difference, or when the plain capture shows no smtp-over-http at all. The
variants are derived test inputs, made here; they are not committed.

Standard library only.
"""

import argparse
import os
import sys
import subprocess
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from encapsulate import VARIANTS, encapsulate  # noqa: E402
from tshark_env import CONTRACT_FIELDS, TsharkEnv, TsharkError  # noqa: E402

CAPTURES = ["connect_ip_tinyproxy.pcap", "connect_hostname.pcap", "concurrent_pairing.pcap",
            "socks5.pcap", "post_relay.pcap", "ipv6.pcap", "https_proxy.pcapng"]
# A capture with TLS keys: its variants are rewritten without them (the
# keys embedded in a pcapng go no further than the pcapng) and read with the
# key log beside it, as an analyst supplies it.
KEYLOGS = {"https_proxy.pcapng": "https_proxy.keylog"}
FRAME_FIELDS = {"smtp-over-http.connect_in", "smtp-over-http.relay_in"}
STREAM_FIELDS = {"smtp-over-http.tunnel.stream", "smtp-over-http.relay.stream",
                 "smtp-over-http.relay.candidate"}
PASSES = {"two passes": ["-2"], "one pass": []}


def fields_output(env, path, fields, passes, keylog=None):
    args = ["-n", "-r", env.stage(path)] + passes + ["-T", "fields", "-E", "occurrence=a",
                                                     "-E", "aggregator=,"]
    if keylog:
        args += ["-o", "tls.keylog_file:" + env.stage(keylog)]
    for f in ["frame.number", "tcp.stream"] + fields:
        args += ["-e", f]
    out, _ = env.run(args)
    rows = {}
    for line in out.splitlines():
        cols = line.split("\t")
        rows[int(cols[0])] = cols[1:]
    return rows


def renumber(cols, columns, numbers):
    for c in columns:
        if c < len(cols) and cols[c]:
            cols[c] = ",".join(str(numbers.get(int(x), "?%s" % x)) for x in cols[c].split(","))


def mapped(rows, where, fields, reference=None):
    """The variant's rows at the frames that complete the plain capture's
    packets, in the plain capture's frame numbering and, given the plain
    capture's rows, its tcp.stream numbering: Wireshark may number a
    variant's streams differently (an ICMP error quoting a segment can take
    a stream number of its own)."""
    back = {v: i + 1 for i, v in enumerate(where)}
    out = [list(rows.get(v, [])) for v in where]
    streams = {}
    for ref, cols in zip(reference or [], out):
        if ref and cols and ref[0] and cols[0]:
            streams.setdefault(int(cols[0]), int(ref[0]))
    for cols in out:
        renumber(cols, [i + 1 for i, f in enumerate(fields) if f in FRAME_FIELDS], back)
        if reference is not None:
            renumber(cols, [0] + [i + 1 for i, f in enumerate(fields) if f in STREAM_FIELDS], streams)
    return out


def summary(rows, fields):
    """Frames marked, legs by kind, tunnels paired uniquely, messages."""
    idx = {f: i + 1 for i, f in enumerate(fields)}
    # pairing stands on every marked frame; a single pass leaves leg out until it is final
    marked = [r for r in rows if len(r) > idx["smtp-over-http.pairing"] and r[idx["smtp-over-http.pairing"]]]
    legs = {}
    for r in marked:
        leg = r[idx["smtp-over-http.leg"]] or "(not yet)"
        legs[leg] = legs.get(leg, 0) + 1
    tunnels = {r[0]: r for r in marked if r[idx["smtp-over-http.leg"]] == "tunnel"}
    unique = sum(1 for r in tunnels.values() if r[idx["smtp-over-http.pairing"]] == "unique")
    messages = sum(int(r[idx["smtp-over-http.smtp.messages"]] or 0) for r in tunnels.values())
    return len(marked), legs, len(tunnels), unique, messages


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--plugin", required=True)
    ap.add_argument("--captures", required=True)
    ap.add_argument("--variant", action="append", help="only these variants (default: all)")
    args = ap.parse_args()
    variants = args.variant or list(VARIANTS)
    if "ethernet" not in variants:
        variants.insert(0, "ethernet")

    failures = []
    per_variant = {v: [0, 0, 0] for v in variants}  # frames compared, marked, captures identical
    with TsharkEnv(args.plugin) as env, tempfile.TemporaryDirectory(prefix="soh-encap-") as tmp:
        os.chmod(tmp, 0o755)
        fields = [f for f in CONTRACT_FIELDS if f in env.verify_plugin()]
        for name in CAPTURES:
            outdir = os.path.join(tmp, name.rsplit(".", 1)[0])
            os.makedirs(outdir)
            src = os.path.join(args.captures, name)
            keylog = os.path.join(args.captures, KEYLOGS[name]) if name in KEYLOGS else None
            if name.endswith(".pcapng"):
                plain = os.path.join(outdir, "source.pcap")
                subprocess.run(["editcap", "-F", "pcap", src, plain], check=True)
                src = plain
            made = encapsulate(src, outdir, variants)
            for path, _ in made.values():
                os.chmod(path, 0o644)
            for label, passes in PASSES.items():
                ref_path, ref_where = made["ethernet"]
                reference = mapped(fields_output(env, ref_path, fields, passes, keylog), ref_where, fields)
                marked, legs, tunnels, unique, messages = summary(reference, fields)
                if marked == 0:
                    failures.append("%s (%s): no smtp-over-http frame on plain Ethernet" % (name, label))
                    continue
                if passes:
                    print("%s: %d frames, %d marked %s, %d tunnels (%d paired uniquely), %d messages"
                          % (name, len(reference), marked,
                             "/".join("%s %d" % kv for kv in sorted(legs.items())), tunnels, unique, messages))
                for variant in variants:
                    if variant == "ethernet":
                        continue
                    path, where = made[variant]
                    rows = fields_output(env, path, fields, passes, keylog)
                    got = mapped(rows, where, fields, reference)
                    diff = [(i + 1, a, b) for i, (a, b) in enumerate(zip(reference, got)) if a != b]
                    # The other frames (ICMP errors, first fragments) carry nothing of ours.
                    extra = sorted(n for n in set(rows) - set(where) if len(rows[n]) > 1 and rows[n][1])
                    if extra:
                        failures.append("%s as %s (%s): frames %s, which complete no packet of the "
                                        "plain capture, carry smtp-over-http" % (name, variant, label, extra[:10]))
                    if passes:
                        per_variant[variant][0] += len(got)
                        per_variant[variant][1] += summary(got, fields)[0]
                    if diff or len(got) != len(reference):
                        n, a, b = diff[0] if diff else (0, "", "")
                        failures.append("%s as %s (%s): %d of %d frames differ; first, frame %d:\n"
                                        "    ethernet: %s\n    %s: %s"
                                        % (name, variant, label, len(diff), len(reference), n,
                                           "\t".join(a), variant, "\t".join(b)))
                    elif passes:
                        per_variant[variant][2] += 1
    print("%-16s %9s %8s  %s" % ("variant", "frames", "marked", "same as plain Ethernet (one pass and two)"))
    for variant in variants:
        if variant == "ethernet":
            continue
        frames, marked, same = per_variant[variant]
        print("%-16s %9d %8d  %d of %d captures" % (variant, frames, marked, same, len(CAPTURES)))
    if failures:
        print("\n".join("FAIL " + f for f in failures), file=sys.stderr)
        return 1
    print("encapsulations: %d variants of %d captures, identical to plain Ethernet in one pass and in two"
          % (len(variants) - 1, len(CAPTURES)))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except TsharkError as e:
        print("encapsulations: %s" % e, file=sys.stderr)
        sys.exit(2)
