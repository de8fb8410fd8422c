#!/usr/bin/env python3
"""Exports re-analyse the same: the frames an analyst exports with the
display filter `smtp-over-http` show the same smtp-over-http analysis when
the export is opened again.

For every capture in the captures directory (*.pcap, *.pcapng; a capture
with a <stem>.keylog beside it is read with `-o tls.keylog_file:<that key
log>`, the export too) this runs

    tshark -n -2 -r CAP -Y smtp-over-http -w EXPORT -F pcapng|pcap

(pcapng for a pcapng capture, pcap otherwise), then analyses CAP with -2
(all frames) and EXPORT with -2, with `-T fields -E occurrence=a -E
aggregator=,` of frame.number, tcp.stream, `smtp-over-http` (the protocol
item: tshark prints its text when the frame carries the protocol, nothing
otherwise) and every value field the plugin registers
(tshark_env.our_fields, so new fields are covered automatically).

Export frame i is the i-th frame of CAP that carries smtp-over-http (the
frame map; frame.len and frame.time_epoch of the pair must agree, or the
map itself is wrong and reported). The stream map takes each export
tcp.stream to the original tcp.stream of the frames it holds (one export
stream holding frames of two original streams is a failure). Export values
are translated into the original numbering before comparing:

- frame-number fields (every field of ours tshark -G fields types
  FT_FRAMENUM: connect_in, response_in, relay_in, ...) through the frame map;
- tcp.stream-valued fields (tunnel.stream, relay.stream, relay.candidate,
  tunnel.candidate, chain.stream, and any other registered field of ours
  named *.stream or *.candidate) through the stream map; the candidate
  lists are compared as sets (sorted), chain.stream in order;
- smtp-over-http.filter, when registered (a display filter such as
  `tcp.stream in {12 15} || frame.number in {3 4}`): every number of a
  `tcp.stream in {...}` / `tcp.stream == N` term through the stream map,
  every number of a `frame.number in {...}` / `frame.number == N` term
  through the frame map, the numbers of a set sorted (on both sides).
A number the map does not know is shown as ?N and so differs.

Fails when
a. the export is empty while CAP has frames carrying smtp-over-http (or
   holds another number of frames than CAP has marked);
b. an export frame does not carry smtp-over-http when re-analysed, or
   carries it with a field value (after the mapping above) other than its
   original frame's; a field one side prints and the other does not counts;
c. the number of incidents differs: distinct (tunnel.stream, connect_in)
   pairs (mapped; one connection may carry several incidents, one per
   request) on frames whose leg is `tunnel` or `attempt`, in CAP and in the
   export.

Prints one line per capture (frames marked, frames exported, exported
frames re-analysed alike, incidents in the capture / the export), then the
failures (the first few per capture and check; all with -v), and exits 1 on
any failure, 2 when tshark or the plugin cannot be run. --keep DIR keeps
the exports (DIR/<stem>.export.pcap[ng]). Captures run in parallel, at most
two at a time.

Standard library only.
"""

import argparse
import os
import re
import shutil
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tshark_env import PROTO, TsharkEnv, TsharkError, our_fields  # noqa: E402
from check_passes import (Capture, Result, common_args, fields_run, find_captures,  # noqa: E402
                          report, run_all)

P = PROTO + "."
LEG = P + "leg"
TUNNEL_STREAM = P + "tunnel.stream"
FILTER = P + "filter"
STREAM_FIELDS = {P + f for f in ("tunnel.stream", "relay.stream", "relay.candidate",
                                 "tunnel.candidate", "chain.stream")}
SET_FIELDS = {P + "relay.candidate", P + "tunnel.candidate"}
INCIDENT_LEGS = {"tunnel", "attempt"}
CHECK_FIELDS = ["frame.len", "frame.time_epoch"]   # the frame map pairs the same packets

CHECKS = {
    "internal": "frame or stream map",
    "a": "export empty or incomplete",
    "b": "export frame re-analysed differently",
    "c": "number of incidents differs",
}


def field_kinds(registered):
    """(frame-number fields, tcp.stream-valued fields) among ours."""
    frames = {f for f, t in registered.items() if t == "FT_FRAMENUM"}
    streams = {f for f in registered if f in STREAM_FIELDS or re.search(r"\.(stream|candidate)$", f)}
    streams = {f for f in streams if registered[f].startswith("FT_UINT") or registered[f].startswith("FT_INT")}
    return frames, streams


def _num_key(s):
    return (not s.isdigit(), int(s) if s.isdigit() else 0, s)


def map_numbers(value, mapping, as_set=False):
    """'3,5' -> the numbers through mapping ('?N' when unknown; mapping None:
    unchanged), joined by ','; sorted numerically when as_set."""
    if not value:
        return value
    out = []
    for x in value.split(","):
        if mapping is None:
            out.append(x)
            continue
        try:
            out.append(str(mapping.get(int(x), "?%s" % x)))
        except ValueError:
            out.append("?%s" % x)
    if as_set:
        out.sort(key=_num_key)
    return ",".join(out)


_FILTER_TERM = re.compile(r"(tcp\.stream|frame\.number)(\s*(?:in\s*\{[^}]*\}|(?:==|eq)\s*\d+))")


def map_filter(value, streams=None, frames=None):
    """The filter with the numbers of its tcp.stream / frame.number terms
    mapped (identity when a map is None) and each set sorted."""
    def term(m):
        mapping = streams if m.group(1) == "tcp.stream" else frames
        body = m.group(2)

        def num(n):
            x = int(n.group(0))
            return str(mapping.get(x, "?%d" % x)) if mapping is not None else str(x)
        if "{" in body:
            head, _, rest = body.partition("{")
            inner, _, tail = rest.partition("}")
            items = re.findall(r"\d+(?:\.\.\d+)?", inner)
            mapped = [re.sub(r"\d+", num, it) for it in items]
            mapped.sort(key=lambda s: [int(p) if p.isdigit() else -1
                                       for p in re.split(r"\?|\.\.", s) if p != ""] or [0])
            return m.group(1) + head + "{" + " ".join(mapped) + "}" + tail
        return m.group(1) + re.sub(r"\d+", num, body)
    return _FILTER_TERM.sub(term, value)


def incidents(rows, streams=None, frames=None):
    """Distinct (tunnel.stream, connect_in) pairs (through `streams` and
    `frames` when given) on the frames whose leg is tunnel or attempt."""
    found = set()
    for r in rows.frames.values():
        if not INCIDENT_LEGS & set(r.get(LEG, "").split(",")):
            continue
        req = r.get(P + "connect_in", "").split(",")[0]
        req = int(req) if req else None
        if frames is not None and req is not None:
            req = frames.get(req, "?%s" % req)
        for x in filter(None, r.get(TUNNEL_STREAM, "").split(",")):
            found.add((streams.get(int(x), "?%s" % x) if streams is not None else int(x), req))
    return found


def show(v):
    return repr(v) if v else "(absent)"


def check_capture(env, cap, fields, frame_fields, stream_fields, outdir, keep):
    res = Result(cap)
    ext = "pcapng" if cap.pcapng else "pcap"
    export = os.path.join(outdir, "%s.export.%s" % (cap.stem, ext))
    env.run(cap.read_args(["-2"]) + ["-Y", PROTO, "-w", export, "-F", ext])
    if keep:
        shutil.copyfile(export, os.path.join(keep, os.path.basename(export)))
    exp = Capture(export, None, None)
    exp.staged, exp.staged_keylog = export, cap.staged_keylog

    orig = fields_run(env, cap, ["-2"], CHECK_FIELDS + fields)
    got = fields_run(env, exp, ["-2"], CHECK_FIELDS + fields)
    marked = orig.marked()
    where = sorted(got.frames)
    n_inc = len(incidents(orig))
    res.summary = ("%s: %d frames, %d marked, %d exported, " % (cap.name, len(orig.frames), len(marked),
                                                               len(where)))

    # a. the export holds the marked frames
    if marked and not where:
        res.fail("a", "the export is empty, while %d frames carry smtp-over-http (first: %s)"
                 % (len(marked), marked[:5]))
        res.summary += "0 alike, incidents %d / 0" % n_inc
        if n_inc:
            res.fail("c", "%d incidents in the capture (tunnel streams %s), 0 in the export"
                     % (n_inc, sorted(incidents(orig), key=str)))
        return res
    if len(where) != len(marked):
        res.fail("a", "the export holds %d frames, the capture marks %d" % (len(where), len(marked)))

    # the frame map and the stream map (export numbering -> original)
    frames = {e: o for e, o in zip(where, marked)}
    for e, o in frames.items():
        for f in CHECK_FIELDS:
            if got.frames[e][f] != orig.frames[o][f]:
                res.fail("internal", "export frame %d is not original frame %d: %s %s != %s"
                         % (e, o, f, got.frames[e][f], orig.frames[o][f]))
                break
    streams, clash = {}, {}
    for e, o in frames.items():
        es = got.frames[e]["tcp.stream"].split(",")
        os_ = orig.frames[o]["tcp.stream"].split(",")
        for a, b in zip(es, os_):
            if a and b:
                a, b = int(a), int(b)
                if streams.setdefault(a, b) != b:
                    clash.setdefault(a, {streams[a]}).add(b)
    for a, bs in sorted(clash.items()):
        res.fail("internal", "export tcp.stream %d holds frames of original streams %s" % (a, sorted(bs)))

    # b. every exported frame, re-analysed, as originally
    alike = 0
    for e, o in frames.items():
        re_, ro = got.frames[e], orig.frames[o]
        where_txt = "export frame %d = frame %d (tcp.stream %s)" % (e, o, ro["tcp.stream"] or "-")
        if not re_[PROTO]:
            res.fail("b", "%s: carries no smtp-over-http when re-analysed (originally leg %s, "
                     "pairing %s)" % (where_txt, show(ro.get(LEG, "")), show(ro.get(P + "pairing", ""))))
            continue
        diffs = 0
        for f in fields:
            ve, vo = re_.get(f, ""), ro.get(f, "")
            if f in frame_fields:
                vm = map_numbers(ve, frames)
            elif f in stream_fields:
                vm = map_numbers(ve, streams, as_set=f in SET_FIELDS)
                vo = map_numbers(vo, None, as_set=f in SET_FIELDS)
            elif f == FILTER:
                vm, vo = map_filter(ve, streams, frames), map_filter(vo)
            else:
                vm = ve
            if vm != vo:
                diffs += 1
                res.fail("b", "%s: %s: original %s, export %s%s"
                         % (where_txt, f, show(vo), show(ve),
                            " (mapped %s)" % show(vm) if vm != ve else ""))
        alike += not diffs

    # c. incidents
    inc_orig, inc_exp = incidents(orig), incidents(got, streams, frames)
    if len(inc_orig) != len(inc_exp):
        res.fail("c", "%d incidents in the capture, %d in the export (tunnel stream and request: "
                 "capture %s, export mapped %s)" % (len(inc_orig), len(inc_exp), sorted(inc_orig, key=str),
                                                    sorted(inc_exp, key=str)))
    res.summary += "%d alike, incidents %d / %d" % (alike, len(inc_orig), len(inc_exp))
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_args(ap)
    ap.add_argument("--keep", metavar="DIR", help="keep the exported files in DIR")
    args = ap.parse_args(argv)
    try:
        caps = find_captures(args.captures, args.capture)
    except ValueError as e:
        print("export: %s" % e, file=sys.stderr)
        return 2
    if not caps:
        print("export: no capture in %s" % args.captures, file=sys.stderr)
        return 2
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    with TsharkEnv(args.plugin, timeout=args.timeout) as env:
        registered = env.verify_plugin()
        fields = our_fields(registered)
        frame_fields, stream_fields = field_kinds(registered)
        if args.verbose:
            print("frame-number fields: %s" % " ".join(sorted(frame_fields)))
            print("stream fields: %s" % " ".join(sorted(stream_fields)))
        # tshark runs as another user (see tshark_env): it writes the exports here.
        outdir = os.path.join(env.home, "exports")
        os.makedirs(outdir)
        os.chmod(outdir, 0o1777)
        results = run_all(env, caps, lambda e, c: check_capture(
            e, c, fields, frame_fields, stream_fields, outdir, args.keep), args.jobs)
    return report(results, CHECKS, args.verbose, "export")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except TsharkError as e:
        print("export: %s" % e, file=sys.stderr)
        sys.exit(2)
