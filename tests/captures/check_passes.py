#!/usr/bin/env python3
"""One pass tells no lie: what the smtp-over-http plugin shows in a single
pass must not contradict what it shows with -2.

Wireshark dissects every frame once when tshark reads a file in one pass
(and so when Wireshark shows a live capture), before the plugin has seen
the frames that follow; with -2 the second pass knows the whole file. A
single pass may know less; it must not say something else. For every
capture in the captures directory (*.pcap, *.pcapng; a capture with a
<stem>.keylog beside it is read with `-o tls.keylog_file:<that key log>`,
in both passes) this runs tshark in one pass and with -2 and checks, frame
by frame:

a. Every frame that carries smtp-over-http in one pass carries it with -2.
b. Every field value the plugin prints in one pass equals the -2 value of
   the same field on the same frame. The fields are every value field the
   plugin registers (tshark_env.our_fields: the contract fields first, then
   every other registered field of ours that is not FT_NONE/FT_PROTOCOL, so
   new fields are covered without editing this script), printed with
   `-T fields -E occurrence=a -E aggregator=, -E separator=/t`, so a value
   is all occurrences on the frame, in tree order, joined by commas.
   Exceptions:
   - smtp-over-http.pairing may be `tentative` in one pass whatever -2
     says (a provisional value); any other one-pass pairing must equal -2's;
   - on a frame whose one-pass pairing is `tentative`,
     smtp-over-http.relay.candidate and smtp-over-http.tunnel.candidate
     are the candidates known at that time and are not compared;
   - a field the one pass does not print at all is fine (incomplete, not
     wrong); smtp-over-http.line is compared like any other field.
c. Each of our expert messages on a frame in one pass is on that frame
   with -2 too (as often). "Ours" is decided from the protocol tree, not
   from the text: tshark -T pdml prints every expert item as a
   `_ws.expert` field whose first child is the expert's own abbrev; the
   items with an abbrev starting with `smtp-over-http.` are ours, wherever
   in the tree they hang. An expert item is identified by (abbrev, message)
   and compared as a multiset. (An expert the plugin raises without a tree
   item, e.g. smtp-over-http.table_full added with a NULL item, exists in
   no frame's tree and so cannot be checked per frame.)
d. No frame of a stream the labels call benign carries smtp-over-http, in
   either pass. The labels are <stem>.labels.json (or the labels file
   whose "capture" names the capture); the streams are those of its
   "benign" and "benign_relays" entries, each matched to tcp.stream by its
   two endpoints, as check_captures.py matches them. A benign entry that
   names no stream of the capture is a failure too (the check would
   otherwise check nothing).

Whether a frame carries smtp-over-http at all is read from `-e
smtp-over-http` (tshark prints the protocol item's text for a protocol
field, nothing when the frame has none; verified on tshark 4.0), and
cross-checked against the PDML run, which must show a <proto
name="smtp-over-http"> on exactly the same frames.

Prints one line per capture (frames, frames marked in one pass / with -2,
values compared, frames with a tentative pairing, expert items checked),
then every failure as `FAIL <capture> frame <n>: <field>: one pass <value>,
two passes <value>` (the first few per capture and check; all with -v),
and exits 1 on any failure, 2 when tshark or the plugin cannot be run.
Captures run in parallel, at most two at a time.

Standard library only.
"""

import argparse
import collections
import concurrent.futures
import glob
import io
import ipaddress
import json
import os
import re
import sys
import xml.etree.ElementTree as ET

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tshark_env import PROTO, TsharkEnv, TsharkError, our_fields  # noqa: E402

P = PROTO + "."
PAIRING = P + "pairing"
TENTATIVE = "tentative"
CANDIDATES = {P + "relay.candidate", P + "tunnel.candidate"}
ADDR_FIELDS = ["ip.src", "ipv6.src", "tcp.srcport", "ip.dst", "ipv6.dst", "tcp.dstport"]
BASE_FIELDS = ["frame.number", "tcp.stream", PROTO] + ADDR_FIELDS
CAPTURE_PATTERNS = ("*.pcap", "*.pcapng")
MAX_WORKERS = 2
MAX_DETAILS = 8           # failures quoted per capture and check without -v


# -- captures, labels, key logs ---------------------------------------------

class Capture:
    """A capture file with its labels (or None) and key log (or None)."""

    def __init__(self, path, labels, keylog):
        self.path = path
        self.name = os.path.basename(path)
        self.stem = self.name.rsplit(".", 1)[0]
        self.labels = labels
        self.keylog = keylog
        self.staged = None
        self.staged_keylog = None

    @property
    def pcapng(self):
        return self.name.endswith(".pcapng")

    def stage(self, env):
        self.staged = env.stage(self.path)
        if self.keylog:
            self.staged_keylog = env.stage(self.keylog)

    def read_args(self, passes):
        """tshark options to read this capture (staged) in the given passes."""
        args = ["-n", "-r", self.staged] + list(passes)
        if self.staged_keylog:
            args += ["-o", "tls.keylog_file:" + self.staged_keylog]
        return args


def find_captures(directory, only=None):
    """The captures in `directory` (sorted), restricted to the names in
    `only` (file name or stem). Raises ValueError for an unknown name."""
    paths = sorted({p for pat in CAPTURE_PATTERNS for p in glob.glob(os.path.join(directory, pat))})
    labels = {}
    for lf in sorted(glob.glob(os.path.join(directory, "*.labels.json"))):
        stem = os.path.basename(lf)[:-len(".labels.json")]
        try:
            with open(lf) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            data = {"_error": "%s: %s" % (os.path.basename(lf), e)}
        labels[data.get("capture", stem + ".pcap") if isinstance(data, dict) else stem + ".pcap"] = data
    caps = []
    for p in paths:
        name = os.path.basename(p)
        stem = name.rsplit(".", 1)[0]
        keylog = os.path.join(directory, stem + ".keylog")
        caps.append(Capture(p, labels.get(name), keylog if os.path.isfile(keylog) else None))
    if only:
        want = set(only)
        known = {c.name for c in caps} | {c.stem for c in caps}
        unknown = sorted(want - known)
        if unknown:
            raise ValueError("no capture named %s in %s" % (", ".join(unknown), directory))
        caps = [c for c in caps if c.name in want or c.stem in want]
    return caps


# -- tshark output ------------------------------------------------------------

class Rows:
    """One `-T fields` run: frame number -> {field: value} (values as
    tshark prints them, "" when absent), in frame order."""

    def __init__(self, columns, frames):
        self.columns = columns
        self.frames = frames          # dict int -> dict

    def marked(self):
        return [n for n, r in self.frames.items() if r[PROTO]]

    def stream(self, n):
        s = self.frames[n]["tcp.stream"].split(",")[0]
        return int(s) if s else None


def fields_run(env, cap, passes, fields, extra=()):
    """Run tshark -T fields on the capture; return Rows."""
    columns = BASE_FIELDS + [f for f in fields if f not in BASE_FIELDS]
    args = cap.read_args(passes) + list(extra) + [
        "-T", "fields", "-E", "header=n", "-E", "occurrence=a", "-E", "aggregator=,",
        "-E", "separator=/t", "-E", "quote=n"]
    for f in columns:
        args += ["-e", f]
    out, _ = env.run(args)
    frames = {}
    for line in out.splitlines():
        cols = line.split("\t")
        if len(cols) > len(columns):
            raise TsharkError("%s: tshark printed %d columns for %d fields (a tab in a value?): %r"
                              % (cap.name, len(cols), len(columns), line[:200]))
        cols += [""] * (len(columns) - len(cols))
        try:
            n = int(cols[0])
        except ValueError:
            raise TsharkError("%s: unexpected tshark line %r" % (cap.name, line[:200]))
        frames[n] = dict(zip(columns, cols))
    return Rows(columns, frames)


# XML 1.0 forbids most control characters even as character references;
# tshark escapes them that way in PDML, so they are replaced before parsing.
_BAD_REF = re.compile(r"&#(?:x0*(?:[0-8bBcCeEfF]|1[0-9a-fA-F])|0*(?:[0-8]|1[1-24-9]|2[0-9]|3[01]));")
_BAD_CHR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def pdml_run(env, cap, passes):
    """Run tshark -T pdml; return (frames carrying our protocol, frame ->
    Counter of our expert items (abbrev, message))."""
    out, _ = env.run(cap.read_args(passes) + ["-T", "pdml"])
    out = _BAD_CHR.sub("\ufffd", _BAD_REF.sub("\ufffd", out))
    marked, experts = set(), {}
    try:
        for _, el in ET.iterparse(io.StringIO(out), events=("end",)):
            if el.tag != "packet":
                continue
            num = None
            for proto in el.findall("proto"):
                name = proto.get("name")
                if name == "geninfo":
                    for f in proto.findall("field"):
                        if f.get("name") == "num":
                            num = int(f.get("show"))
            if num is None:
                raise TsharkError("%s: a PDML packet without a frame number" % cap.name)
            if PROTO in {p.get("name") for p in el.findall("proto")}:
                marked.add(num)
            found = collections.Counter()
            for ex in el.iter("field"):
                if ex.get("name") != "_ws.expert":
                    continue
                kids = ex.findall("field")
                ours = [k.get("name") for k in kids if (k.get("name") or "").startswith(P)]
                if not ours:
                    continue
                msg = [k.get("show") for k in kids if k.get("name") == "_ws.expert.message"]
                found[(ours[0], msg[0] if msg else ex.get("showname", ""))] += 1
            if found:
                experts[num] = found
            el.clear()
    except ET.ParseError as e:
        raise TsharkError("%s: cannot parse tshark's PDML: %s" % (cap.name, e))
    marked.discard(None)
    return marked, experts


# -- labels -------------------------------------------------------------------

def parse_ep(text):
    """'192.0.2.1:80' / '[2001:db8::1]:80' -> (ip_address, port)."""
    host, sep, port = text.rpartition(":")
    if not sep:
        raise ValueError("endpoint %r has no port" % text)
    return ipaddress.ip_address(host.strip("[]")), int(port)


def stream_endpoints(rows):
    """tcp.stream -> frozenset of its two endpoints, from its first frame
    with one IP source and destination (as check_captures.py does)."""
    eps = {}
    for n, r in rows.frames.items():
        s = rows.stream(n)
        if s is None or s in eps:
            continue
        sip, dip = r["ip.src"] or r["ipv6.src"], r["ip.dst"] or r["ipv6.dst"]
        if not sip or not dip or "," in sip + dip:
            continue
        try:
            eps[s] = frozenset(((ipaddress.ip_address(sip), int(r["tcp.srcport"].split(",")[0])),
                                (ipaddress.ip_address(dip), int(r["tcp.dstport"].split(",")[0]))))
        except ValueError:
            pass
    return eps


def benign_streams(labels, eps):
    """(tcp.stream -> description of the benign entry, label errors)."""
    found, errors = {}, []
    if labels is None:
        return found, errors
    if "_error" in labels:
        return found, ["labels: %s" % labels["_error"]]
    for kind, entries in (("benign", labels.get("benign", [])),
                          ("benign relay", labels.get("benign_relays", []))):
        for b in entries:
            try:
                want = frozenset((parse_ep(b["client"]), parse_ep(b["server"])))
            except (KeyError, ValueError) as e:
                errors.append("labels: %s entry %r: %s" % (kind, b, e))
                continue
            what = "%s%s %s -> %s" % (kind, " " + b["kind"] if b.get("kind") else "",
                                      b["client"], b["server"])
            sids = [s for s, e in eps.items() if e == want]
            if not sids:
                errors.append("labels: %s names no TCP stream of the capture" % what)
            for s in sids:
                found[s] = what
    return found, errors


# -- the checks ---------------------------------------------------------------

class Result:
    """Failures of one capture, grouped by check, with a summary line."""

    def __init__(self, cap):
        self.cap = cap
        self.summary = ""
        self.failures = collections.OrderedDict()   # check -> [text]
        self.error = None

    def fail(self, check, text):
        self.failures.setdefault(check, []).append(text)

    @property
    def nfail(self):
        return sum(len(v) for v in self.failures.values())


def show(v):
    return repr(v) if v else "(absent)"


def check_capture(env, cap, fields):
    res = Result(cap)
    one = fields_run(env, cap, [], fields)
    two = fields_run(env, cap, ["-2"], fields)
    one_pdml, one_exp = pdml_run(env, cap, [])
    two_pdml, two_exp = pdml_run(env, cap, ["-2"])

    # The two ways of telling whether a frame carries our protocol agree.
    for label, rows, pdml in (("one pass", one, one_pdml), ("two passes", two, two_pdml)):
        diff = sorted(set(rows.marked()) ^ pdml)
        if diff:
            res.fail("internal", "%s: `-e %s` and PDML disagree on whether frames %s carry it"
                     % (label, PROTO, diff[:10]))
    if set(one.frames) != set(two.frames):
        res.fail("internal", "one pass prints frames %s that two passes do not, two passes %s"
                 % (sorted(set(one.frames) - set(two.frames))[:10],
                    sorted(set(two.frames) - set(one.frames))[:10]))

    # a. marked in one pass -> marked with -2
    one_marked, two_marked = set(one.marked()), set(two.marked())
    for n in sorted(one_marked - two_marked):
        r = one.frames[n]
        res.fail("a", "frame %d (tcp.stream %s): carries smtp-over-http in one pass (leg %s), "
                 "not with -2" % (n, r["tcp.stream"] or "-", show(r.get(P + "leg", ""))))

    # b. field values
    compared = tentative = 0
    for n in sorted(one.frames):
        r1 = one.frames[n]
        r2 = two.frames.get(n)
        if r2 is None or (r1[PROTO] and not r2[PROTO]):
            continue              # reported by check a
        pair1 = r1.get(PAIRING, "")
        is_tentative = TENTATIVE in pair1.split(",")
        tentative += is_tentative
        for f in fields:
            v1 = r1.get(f, "")
            if not v1:
                continue
            if f == PAIRING and set(v1.split(",")) == {TENTATIVE}:
                continue
            if is_tentative and f in CANDIDATES:
                continue
            compared += 1
            v2 = r2.get(f, "")
            if v1 != v2:
                res.fail("b", "frame %d (tcp.stream %s): %s: one pass %s, two passes %s%s"
                         % (n, r1["tcp.stream"] or "-", f, show(v1), show(v2),
                            " (one-pass pairing %s)" % show(pair1) if f != PAIRING else ""))

    # c. expert items
    nexp = 0
    for n in sorted(one_exp):
        have = two_exp.get(n, collections.Counter())
        for (abbrev, msg), k in sorted(one_exp[n].items()):
            nexp += k
            if have[(abbrev, msg)] < k:
                others = sorted(m for (a, m) in have if a == abbrev)
                res.fail("c", "frame %d: expert %s %r%s in one pass, not with -2 (there: %s)"
                         % (n, abbrev, msg, " x%d" % k if k > 1 else "",
                            "; ".join(repr(m) for m in others) if others else
                            "no %s item" % abbrev))

    # d. benign streams
    for label, rows in (("one pass", one), ("two passes", two)):
        benign, errors = benign_streams(cap.labels, stream_endpoints(rows))
        for e in errors:
            if label == "two passes":
                res.fail("d", e)
        hits = collections.OrderedDict()
        for n in rows.marked():
            s = rows.stream(n)
            if s in benign:
                hits.setdefault(s, []).append(n)
        for s, nums in hits.items():
            res.fail("d", "%s: %d frame(s) of benign stream %d (%s) carry smtp-over-http "
                     "(first: %s; leg %s)" % (label, len(nums), s, benign[s], nums[:5],
                                              show(rows.frames[nums[0]].get(P + "leg", ""))))

    res.summary = ("%s: %d frames, marked %d in one pass / %d with -2, %d values compared, "
                   "%d tentative frames, %d expert items checked%s"
                   % (cap.name, len(two.frames), len(one_marked), len(two_marked), compared,
                      tentative, nexp, "" if cap.labels is not None else " (no labels)"))
    return res


CHECKS = {
    "internal": "tshark output",
    "a": "marked in one pass, not with -2",
    "b": "one-pass value differs from -2",
    "c": "one-pass expert missing with -2",
    "d": "benign stream marked",
}


# -- driver (shared with check_export.py) -------------------------------------

def run_all(env, caps, job, workers=MAX_WORKERS):
    """Run job(env, cap) -> Result for every capture, at most `workers` at
    a time; results in capture order. A TsharkError fails that capture."""
    for cap in caps:              # staging is not thread-safe: do it first
        cap.stage(env)

    def one(cap):
        try:
            return job(env, cap)
        except TsharkError as e:
            r = Result(cap)
            r.error = str(e)
            return r

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(workers, MAX_WORKERS))) as ex:
        return list(ex.map(one, caps))


def report(results, checks, verbose, title):
    """Print summaries and failures; return the exit status."""
    for r in results:
        if r.error:
            print("%s: ERROR %s" % (r.cap.name, r.error.splitlines()[0]))
        else:
            print(r.summary + ("" if not r.nfail else "  -> %d FAILURES" % r.nfail))
    bad = 0
    for r in results:
        if r.error:
            print("ERROR %s: %s" % (r.cap.name, r.error), file=sys.stderr)
            bad += 1
            continue
        for check, texts in r.failures.items():
            print("FAIL %s: %s (check %s): %d" % (r.cap.name, checks.get(check, check), check,
                                                  len(texts)), file=sys.stderr)
            by_field = collections.Counter(m.group(1) for m in
                                           (re.search(r": (smtp-over-http\.[\w.]+): (?:one pass|original) ", t)
                                            for t in texts) if m)
            if len(by_field) > 1:
                print("    by field: %s" % ", ".join("%s %d" % kv for kv in by_field.most_common()),
                      file=sys.stderr)
            shown = texts if verbose else texts[:MAX_DETAILS]
            for t in shown:
                print("FAIL %s %s" % (r.cap.name, t), file=sys.stderr)
            if len(shown) < len(texts):
                print("    ... %d more (-v shows all)" % (len(texts) - len(shown)), file=sys.stderr)
        bad += bool(r.failures)
    errors = sum(1 for r in results if r.error)
    print("%s: %d captures, %d passed, %d failed%s"
          % (title, len(results), len(results) - bad, bad - errors,
             ", %d could not be analysed" % errors if errors else ""))
    return 2 if errors else 1 if bad else 0


def common_args(ap):
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--plugin", required=True, help="path of the built smtp-over-http.so")
    ap.add_argument("--captures", default=os.path.join(here, "..", "..", "captures"),
                    help="directory holding the captures (and their labels and key logs)")
    ap.add_argument("--capture", action="append", metavar="NAME",
                    help="only this capture (file name or stem; repeatable)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every failure")
    ap.add_argument("--jobs", type=int, default=MAX_WORKERS,
                    help="captures analysed in parallel (at most %d)" % MAX_WORKERS)
    ap.add_argument("--timeout", type=int, default=300, help="seconds per tshark run")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_args(ap)
    args = ap.parse_args(argv)
    try:
        caps = find_captures(args.captures, args.capture)
    except ValueError as e:
        print("passes: %s" % e, file=sys.stderr)
        return 2
    if not caps:
        print("passes: no capture in %s" % args.captures, file=sys.stderr)
        return 2
    with TsharkEnv(args.plugin, timeout=args.timeout) as env:
        fields = our_fields(env.verify_plugin())
        if args.verbose:
            print("fields: %s" % " ".join(fields))
        results = run_all(env, caps, lambda e, c: check_capture(e, c, fields), args.jobs)
    return report(results, CHECKS, args.verbose, "passes")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except TsharkError as e:
        print("passes: %s" % e, file=sys.stderr)
        sys.exit(2)
