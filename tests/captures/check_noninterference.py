#!/usr/bin/env python3
"""The smtp-over-http plugin must not change how Wireshark dissects anything
else.  For every bundled capture, with the plugin loaded, compare tshark's
output with the protocol enabled against `--disable-protocol smtp-over-http`:

- `-V` (single pass), after removing our own subtree (a line starting with
  "SMTP-over-HTTP" at column 0 and the indented lines below it) and our name
  in the "[Protocols in frame: ...]" line;
- `-T fields` (single pass and -2) of frame.number, tcp.stream,
  http.request.method, smtp.req.command, _ws.col.Protocol and _ws.col.Info,
  after removing our Info column tag " [SMTP-over-HTTP ...]" (and, on both
  sides, blanks at the end of a line);
- the frames a display filter on other protocols keeps (-Y), and, with the
  protocol enabled, that "smtp-over-http || F" keeps exactly the frames of
  smtp-over-http and those of F: the plugin frees the tree's index of
  filtered fields when it is empty (see drop_empty_field_index), and the
  filter must see every field all the same.

Any other difference fails.  Also fails when the enabled run shows no
smtp-over-http anywhere although the labels expect incidents (a disabled
plugin would otherwise pass trivially).

Standard library only.
"""

import argparse
import difflib
import glob
import json
import os
import re
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tshark_env import PROTO, TsharkEnv, TsharkError  # noqa: E402

TAG = re.compile(r"\s*\[SMTP-over-HTTP[^\]]*\]")
PROTOS_LINE = re.compile(r"^(\s*\[Protocols in frame: )(.*)(\])$")
FIELDS = ["frame.number", "tcp.stream", "http.request.method", "smtp.req.command",
          "_ws.col.Protocol", "_ws.col.Info"]
DISABLE = ["--disable-protocol", PROTO]
# Fields on a few frames each, so that frames with and without a filtered
# field alternate.
FILTERS = ["http.request || smtp.req.command", "tcp.flags.syn == 1 && tcp.flags.ack == 0"]


def strip_verbose(text):
    """Drop our subtree and our entry in 'Protocols in frame'.
    Returns (text, number of our subtree header lines seen)."""
    out = []
    in_ours = False
    ours = 0
    for line in text.splitlines(True):
        if line.startswith("SMTP-over-HTTP"):
            in_ours = True
            ours += 1
            continue
        if in_ours:
            if line[:1] in (" ", "\t"):
                continue
            in_ours = False
        m = PROTOS_LINE.match(line.rstrip("\n"))
        if m:
            protos = [p for p in m.group(2).split(":") if p != PROTO]
            line = m.group(1) + ":".join(protos) + m.group(3) + "\n"
        out.append(untag(line))
    return "".join(out), ours


def untag(line):
    """Remove our Info tag; trailing blanks go too, on both sides of the
    comparison (the tag's leading blank may merge with a trailing one)."""
    return TAG.sub("", line.rstrip("\n")).rstrip(" ") + "\n"


def strip_fields(text):
    return "".join(untag(l) for l in text.splitlines())


def expects_incidents(pcap):
    lf = pcap.rsplit(".", 1)[0] + ".labels.json"
    if not os.path.isfile(lf):
        return False
    with open(lf) as f:
        labels = json.load(f)
    legs = labels.get("legs_visible", ["tunnel"])
    return "tunnel" in legs and any(i.get("expected_flag", True)
                                    for i in labels.get("incidents", []))


def diff(a, b, what):
    return "".join(difflib.unified_diff(a.splitlines(True), b.splitlines(True),
                                        what + " (disabled)", what + " (enabled)", n=2))


def kept(env, src, flt, extra=()):
    out, _ = env.run(["-n", "-r", src, "-Y", flt, "-T", "fields", "-e", "frame.number"] + list(extra))
    return {int(x) for x in out.split()}


def check_filters(env, src):
    problems = []
    ours = kept(env, src, PROTO)
    for flt in FILTERS:
        on, off = kept(env, src, flt), kept(env, src, flt, DISABLE)
        if on != off:
            problems.append("-Y %r: frames %s kept only with the protocol enabled, %s only disabled"
                            % (flt, sorted(on - off)[:10], sorted(off - on)[:10]))
        both = kept(env, src, "%s || %s" % (PROTO, flt))
        if both != ours | on:
            problems.append("-Y %r: frames %s missing, %s extra"
                            % ("%s || %s" % (PROTO, flt), sorted((ours | on) - both)[:10],
                               sorted(both - (ours | on))[:10]))
    return problems


def check(env, pcap):
    src = env.stage(pcap)
    problems = []
    on, _ = env.run(["-n", "-r", src, "-V"])
    off, _ = env.run(["-n", "-r", src, "-V"] + DISABLE)
    on_s, ours = strip_verbose(on)
    off_s, ours_off = strip_verbose(off)
    if ours_off:
        problems.append("-V: %d SMTP-over-HTTP subtree(s) although the protocol is disabled"
                        % ours_off)
    if on_s != off_s:
        problems.append(diff(off_s, on_s, "-V"))
    if not ours and expects_incidents(pcap):
        problems.append("-V: no SMTP-over-HTTP subtree at all, but the labels expect incidents")
    fargs = ["-T", "fields", "-E", "header=y", "-E", "separator=/t",
             "-E", "occurrence=a", "-E", "aggregator=,"]
    for f in FIELDS:
        fargs += ["-e", f]
    for passes in ([], ["-2"]):
        on, _ = env.run(["-n", "-r", src] + passes + fargs)
        off, _ = env.run(["-n", "-r", src] + passes + fargs + DISABLE)
        on, off = strip_fields(on), strip_fields(off)
        if on != off:
            problems.append(diff(off, on, "fields%s" % (" -2" if passes else "")))
    return problems + check_filters(env, src)


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--plugin", required=True)
    ap.add_argument("--captures", default=os.path.join(here, "..", "..", "captures"))
    ap.add_argument("--only", action="append", metavar="CASE")
    ap.add_argument("--timeout", type=int, default=300)
    args = ap.parse_args(argv)
    caps = sorted(p for ext in ("pcap", "pcapng")
                  for p in glob.glob(os.path.join(args.captures, "*." + ext)))
    if args.only:
        caps = [p for p in caps if os.path.basename(p).rsplit(".", 1)[0] in args.only]
    if not caps:
        print("error: no capture to check in %s" % args.captures)
        return 2
    failed = 0
    try:
        with TsharkEnv(args.plugin, timeout=args.timeout) as env:
            env.verify_plugin()
            for pcap in caps:
                name = os.path.basename(pcap)
                problems = check(env, pcap)
                if problems:
                    failed += 1
                    print("FAIL %s" % name)
                    for p in problems:
                        print(p.rstrip("\n"))
                else:
                    print("ok   %s" % name)
    except TsharkError as e:
        print("error: %s" % e)
        return 2
    print("%d passed, %d failed" % (len(caps) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
