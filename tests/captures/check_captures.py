#!/usr/bin/env python3
"""Measure the smtp-over-http plugin against the labelled lab captures.

For every captures/<case>.labels.json this runs tshark (two passes, -2) once
on captures/<case>.pcap with the plugin loaded, and compares the
smtp-over-http fields frame by frame with the labels.

Definitions (the contract the plugin is held to):

- A label endpoint "ip:port" or "[v6]:port" is the client side of a TCP
  conversation; a (client, server) pair names one tcp.stream.
- The *request frame* of a tunnel leg is the first frame of the stream that
  the client sends with TCP payload (for SOCKS5 the second one: the first is
  the method greeting); for a leg to an HTTPS proxy (labels `proxy_tls`),
  the first the client sends with TLS application data (content type 23,
  as tshark decrypts it with the capture's keys), the TLS handshake before
  it counting as the TCP handshake does.  The *start* of a relay leg is its first frame with
  TCP payload.
- Detection: an incident that is expected to be flagged (labels
  `expected_flag`, default true) and whose tunnel leg is in the capture is
  detected when every frame of the tunnel stream from the request frame on
  carries smtp-over-http with leg `tunnel` (`attempt` when the status is not
  `established`), tunnel.stream = its own stream, and method, target.host,
  target.port, status and smtp equal to the labels, and connect_in names a
  frame the client sent on that stream.  The frames before the request
  frame (the handshake) must carry smtp-over-http too (complete legs).
- Outcome: an incident whose labels count messages the MTA accepted has
  outcome `messages-accepted` on its tunnel frames.
- False positives: frames carrying smtp-over-http on a stream that is no
  flagged incident's tunnel stream and no labelled relay stream of one (or
  on no TCP stream at all, but for a DNS answer with leg `dns` that names
  an incident's target host).  The streams of an incident with expected_flag
  false (e.g. a relay leg whose tunnel is not in the capture) count as
  false positives too.  Benign streams are reported by name.  Must be 0.
- Pairing (incidents with a labelled relay, both legs in the capture):
  correct when every tunnel frame from the request frame on has relay.stream
  = the labelled relay stream and every relay frame from its start on has
  leg `relay` and tunnel.stream = the tunnel stream (and relay_in a frame of
  the relay stream; a relay that never carried payload, such as a SYN
  answered by RST, counts from its first frame); honestly ambiguous when every such tunnel frame has
  pairing `ambiguous` and the labelled relay stream among relay.candidate.
  Anything else is a failure.  A tunnel without a labelled relay (while relay
  legs are visible) must not name a relay.stream.
- Envelope (incidents with smtp = true): on every tunnel frame from the
  request frame on, smtp.helo, the smtp.mail_from list (in order),
  smtp.rcpt_count and smtp.messages equal the labels.
- Chains (incidents with `hops`): every hop leg (proxy to next proxy) from
  its first payload frame on carries leg `hop`, tunnel.stream = the first
  leg and relay.stream = the last; every frame of the tunnel, hop and relay
  legs carries chain.length = hops + 1 and chain.stream = the streams of all
  legs in order. Pairing is correct only when all of this holds too.
- Mail server reaction (incidents with `relay_reaction`, relay visible): on
  every tunnel frame, relay.reaction equals the label. Counted with pairing.

Figures are reported per capture, in total, and per form (the method of the
first request, "+chain" for chains), so each way of asking a proxy is
measured on its own.

One check = one capture; a capture passes when it has no failure.  The exit
status is non-zero when any capture fails, when the plugin is not loaded,
when a contract field is missing, or when labels are inconsistent with the
case notes.

Standard library only.
"""

import argparse
import glob
import ipaddress
import json
import os
import re
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tshark_env import CONTRACT_FIELDS, TsharkEnv, TsharkError  # noqa: E402

P = "smtp-over-http."
BASE_FIELDS = ["frame.number", "tcp.stream", "ip.src", "ipv6.src", "tcp.srcport",
               "ip.dst", "ipv6.dst", "tcp.dstport", "tcp.len", "tls.record.content_type", "dns.qry.name",
               "http.request.method"]
# Beyond the contract: chains and the mail server's reaction to absolute-URI relay.
EXTRA_FIELDS = ["smtp-over-http.chain.length", "smtp-over-http.chain.stream", "smtp-over-http.relay.reaction",
                "smtp-over-http.outcome"]
FIELDS = BASE_FIELDS + CONTRACT_FIELDS + EXTRA_FIELDS
TRUE = {"1", "true", "True", "TRUE"}
FALSE = {"0", "false", "False", "FALSE"}
MAX_DETAILS = 3           # mismatching frames quoted per check


class LabelError(Exception):
    pass


# -- tshark output ---------------------------------------------------------

def tshark_fields(env, pcap):
    args = ["-n", "-2", "-r", env.stage(pcap), "-T", "fields", "-E", "header=y",
            "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,"]
    for f in FIELDS:
        args += ["-e", f]
    out, _ = env.run(args)
    lines = out.splitlines()
    if not lines:
        raise TsharkError("tshark printed nothing for %s" % pcap)
    header = lines[0].split("\t")
    if header != FIELDS:
        raise TsharkError("unexpected tshark header: %r" % header)
    frames = []
    for line in lines[1:]:
        vals = line.split("\t")
        vals += [""] * (len(FIELDS) - len(vals))
        frames.append(Frame(dict(zip(FIELDS, vals))))
    return frames


def parse_ep(text):
    """'192.0.2.1:80' / '[2001:db8::1]:80' -> (ip_address, port)."""
    host, sep, port = text.rpartition(":")
    if not sep:
        raise LabelError("endpoint %r has no port" % text)
    return ipaddress.ip_address(host.strip("[]")), int(port)


def first(v):
    return v.split(",")[0] if v else ""


class Frame:
    __slots__ = ("num", "stream", "src", "dst", "tcp_len", "f")

    def __init__(self, row):
        self.f = row
        self.num = int(row["frame.number"])
        s = first(row["tcp.stream"])
        self.stream = int(s) if s else None
        self.tcp_len = int(first(row["tcp.len"]) or 0)
        self.src = self.dst = None
        try:
            sip = row["ip.src"] or row["ipv6.src"]
            dip = row["ip.dst"] or row["ipv6.dst"]
            if self.stream is not None and "," not in sip + dip:
                self.src = (ipaddress.ip_address(sip), int(first(row["tcp.srcport"])))
                self.dst = (ipaddress.ip_address(dip), int(first(row["tcp.dstport"])))
        except ValueError:
            pass

    def get(self, field):
        return self.f.get(P + field, "")

    @property
    def ours(self):
        return self.get("leg") != ""


# -- evaluation ------------------------------------------------------------

class Case:
    def __init__(self, name):
        self.name = name
        self.errors = []
        self.notes = []
        self.m = dict(incidents=0, detected=0, fp_frames=0, pairing_total=0,
                      pairing_correct=0, pairing_ambiguous=0, envelope_total=0,
                      envelope_match=0, frames=0, flagged_frames=0)
        self.forms = {}  # form -> the same counters, per way of asking the proxy

    def count(self, form, key, n=1):
        self.m[key] += n
        f = self.forms.setdefault(form, dict(incidents=0, detected=0, pairing_total=0, pairing_correct=0,
                                             pairing_ambiguous=0, envelope_total=0, envelope_match=0))
        f[key] += n

    def fail(self, msg):
        self.errors.append(msg)

    @property
    def ok(self):
        return not self.errors


def index_streams(frames):
    streams = {}
    eps = {}
    for fr in frames:
        if fr.stream is None:
            continue
        streams.setdefault(fr.stream, []).append(fr)
        if fr.stream not in eps and fr.src is not None:
            eps[fr.stream] = frozenset((fr.src, fr.dst))
    return streams, eps


def find_stream(eps, client, server, what):
    c, s = parse_ep(client), parse_ep(server)
    hits = [sid for sid, e in eps.items() if e == frozenset((c, s))]
    if not hits:
        raise LabelError("%s: no TCP stream %s <-> %s in the capture" % (what, client, server))
    if len(hits) > 1:
        raise LabelError("%s: %d TCP streams %s <-> %s (port reuse); labels cannot name one"
                         % (what, len(hits), client, server))
    return hits[0], c


def payload_frames(frames, sender, tls=False):
    """Frames the sender sent with payload; with tls, with TLS application
    data (RFC 8446 §5.1: content type 23)."""
    if tls:
        return [fr for fr in frames if fr.src == sender and "23" in fr.f["tls.record.content_type"].split(",")]
    return [fr for fr in frames if fr.src == sender and fr.tcp_len > 0]


def from_first_payload(frames):
    """A leg the proxy opened counts from its first frame with payload (a leg
    that never carried any, such as a SYN answered by RST, from its first)."""
    start = [fr.num for fr in frames if fr.tcp_len > 0] or [frames[0].num]
    return [fr for fr in frames if fr.num >= start[0]]


def check_frames(frames, expect, what):
    """expect: field -> predicate(value) or exact string. Returns the first
    few mismatches as text (empty list = all frames match)."""
    bad = []
    for fr in frames:
        for field, want in expect.items():
            got = fr.get(field)
            ok = want(got) if callable(want) else got == want
            if not ok:
                bad.append("frame %d: %s = %r, want %s" % (
                    fr.num, P + field, got,
                    getattr(want, "desc", repr(want))))
                break
        if len(bad) >= MAX_DETAILS:
            break
    return ["%s: %s" % (what, b) for b in bad]


def pred(desc, fn):
    fn.desc = desc
    return fn


def norm_host(h):
    return h.strip("[]").lower()


def evaluate(labels, frames, md_text):
    """Compare one capture's frames with its labels; returns a Case."""
    case = Case(labels.get("case", "?"))
    m = case.m
    m["frames"] = len(frames)
    m["flagged_frames"] = sum(1 for fr in frames if fr.ours)
    incidents = labels.get("incidents")
    benign = labels.get("benign", [])
    if incidents is None:
        case.fail("labels have no 'incidents' list")
        return case
    if not incidents and not benign:
        case.fail("labels have neither incidents nor benign connections: nothing to measure")
    if md_text is None:
        case.fail("no case notes (%s.md) next to the labels" % case.name)
    else:
        headings = len(re.findall(r"^### ", md_text, re.M))
        if headings != len(incidents):
            case.fail("case notes describe %d incident(s), labels hold %d"
                      % (headings, len(incidents)))
    legs = set(labels.get("legs_visible", ["tunnel", "relay"]))
    streams, eps = index_streams(frames)
    allowed = set()
    unflagged = {}      # stream -> incident that must not be flagged

    plan = []
    for inc in incidents:
        iid = inc.get("id", "?")
        try:
            flag = inc.get("expected_flag", True)
            tsid = tcli = None
            if "tunnel" in legs:
                tsid, tcli = find_stream(eps, inc["client"], inc["proxy"], iid + " tunnel")
                if flag:
                    allowed.add(tsid)
            rsid = rcli = None
            if inc.get("relay") and "relay" in legs:
                rsid, rcli = find_stream(eps, inc["relay"]["client"], inc["relay"]["server"],
                                         iid + " relay")
                if flag:
                    allowed.add(rsid)
            hsids = []
            for k, hop in enumerate(inc.get("hops", [])):
                hsid, _ = find_stream(eps, hop["client"], hop["server"], "%s hop %d" % (iid, k + 1))
                hsids.append(hsid)
                if flag:
                    allowed.add(hsid)
            if not flag:
                unflagged[tsid if tsid is not None else rsid] = iid
            plan.append((inc, tsid, tcli, rsid, rcli, hsids))
        except (LabelError, KeyError) as e:
            case.fail("labels: %s" % (e if isinstance(e, LabelError) else "missing key %s" % e))

    benign_sids = {}
    for b in benign + labels.get("benign_relays", []):
        try:
            sid, _ = find_stream(eps, b["client"], b["server"], "benign " + b.get("kind", "relay"))
            benign_sids[sid] = "%s %s -> %s" % (b.get("kind", "relay"), b["client"], b["server"])
        except (LabelError, KeyError) as e:
            case.fail("labels: %s" % e)

    for inc, tsid, tcli, rsid, rcli, hsids in plan:
        iid = inc["id"]
        form = inc["method"] + ("+chain" if hsids else "")
        if not inc.get("expected_flag", True):
            case.notes.append("%s not expected to be flagged (%s)" % (iid, inc.get("note", "")))
            continue
        if tsid is None:
            case.notes.append("%s: tunnel leg not in the capture; not measured" % iid)
            continue
        case.count(form, "incidents")
        tframes_all = streams[tsid]
        reqs = payload_frames(tframes_all, tcli, inc.get("proxy_tls", False))
        nreq = 1 if inc["method"] == "SOCKS5" and len(reqs) > 1 else 0
        if not reqs:
            case.fail("%s: client sent no payload on tunnel stream %d" % (iid, tsid))
            continue
        req = reqs[nreq].num
        # Several requests on the connection (labels request_index): the
        # incident's frames run from its request to the next request.
        k = inc.get("request_index", 0)
        http_reqs = [fr.num for fr in reqs if fr.f.get("http.request.method")]
        if k:
            if k >= len(http_reqs):
                case.fail("%s: request %d of stream %d not in the capture" % (iid, k, tsid))
                continue
            req = http_reqs[k]
        later = [n for n in http_reqs if n > req]
        end = later[0] if later else None
        tframes = [fr for fr in tframes_all if fr.num >= req and (end is None or fr.num < end)]
        if k:
            # Its own frames only: the frames before its request belong to
            # the earlier requests, checked as those incidents' frames; when
            # none of them is an incident (web pages fetched first), they
            # must carry nothing.
            tframes_all = tframes
            if not any(o is not inc and o["client"] == inc["client"] and o["proxy"] == inc["proxy"] and
                       o.get("request_index", 0) < k for o in incidents):
                bad = [fr.num for fr in streams[tsid] if fr.num < req and fr.ours]
                if bad:
                    case.fail("%s: frames before request %d on stream %d (web requests) carry "
                              "smtp-over-http: %s" % (iid, k, tsid, bad[:MAX_DETAILS]))
        elif end is not None:
            tframes_all = [fr for fr in tframes_all if fr.num < end]
        req_nums = {fr.num for fr in reqs}

        # detection
        leg = "tunnel" if inc["status"] == "established" else "attempt"
        want_smtp = bool(inc["smtp"])
        expect = {
            "leg": leg,
            "tunnel.stream": str(tsid),
            "method": inc["method"],
            "target.host": pred(repr(inc["target_host"]),
                                lambda v, h=inc["target_host"]: norm_host(v) == norm_host(h)),
            "target.port": str(inc["target_port"]),
            "status": inc["status"],
            "smtp": pred(repr(want_smtp),
                         lambda v, w=want_smtp: v in (TRUE if w else FALSE)),
            "connect_in": pred("a frame the client sent on stream %d" % tsid,
                               lambda v, s=req_nums: v.isdigit() and int(v) in s),
        }
        unflagged = [fr.num for fr in tframes_all if not fr.ours]
        if unflagged:
            case.fail("%s: missed: %d of %d tunnel frames (handshake included) carry no "
                      "smtp-over-http (first: %s)" % (iid, len(unflagged), len(tframes_all),
                                                     unflagged[:MAX_DETAILS]))
        else:
            bad = check_frames(tframes, expect, iid + " detection")
            if bad:
                case.errors.extend(bad)
            else:
                case.count(form, "detected")

        # outcome
        if inc.get("messages"):
            case.errors.extend(check_frames(tframes, {"outcome": "messages-accepted"}, iid + " outcome"))

        # pairing
        if "relay" in legs:
            if rsid is not None:
                case.count(form, "pairing_total")
                rframes_all = streams[rsid]
                rframes = from_first_payload(rframes_all)
                rnums = {fr.num for fr in rframes_all}
                unique = check_frames(tframes, {"relay.stream": str(rsid)}, iid + " pairing") + \
                    check_frames(rframes, {
                        "leg": "relay", "tunnel.stream": str(tsid),
                        "relay.stream": str(rsid),
                        "relay_in": pred("a frame of stream %d" % rsid,
                                         lambda v, s=rnums: v.isdigit() and int(v) in s),
                    }, iid + " relay leg")
                if hsids:
                    chain = {"chain.length": str(len(hsids) + 1),
                             "chain.stream": ",".join(str(x) for x in [tsid] + hsids + [rsid])}
                    for k, hsid in enumerate(hsids):
                        unique += check_frames(from_first_payload(streams[hsid]), dict(
                            chain, **{"leg": "hop", "tunnel.stream": str(tsid), "relay.stream": str(rsid)}),
                            "%s hop %d" % (iid, k + 1))
                    unique += check_frames(tframes + rframes, chain, iid + " chain")
                if inc.get("relay_reaction"):
                    unique += check_frames(tframes, {"relay.reaction": inc["relay_reaction"]},
                                           iid + " mail server reaction")
                ambiguous = check_frames(tframes, {
                    "pairing": "ambiguous",
                    "relay.candidate": pred("a list holding %d" % rsid,
                                            lambda v, s=str(rsid): s in v.split(",")),
                }, iid + " ambiguity")
                if not unique:
                    case.count(form, "pairing_correct")
                elif not ambiguous:
                    case.count(form, "pairing_ambiguous")
                else:
                    case.errors.extend(unique)
            else:
                case.errors.extend(check_frames(tframes, {"relay.stream": ""},
                                                iid + " spurious pairing (no relay labelled)"))

        # envelope
        if want_smtp:
            case.count(form, "envelope_total")
            bad = check_frames(tframes, {
                "smtp.helo": inc.get("helo") or "",
                "smtp.mail_from": ",".join(inc.get("mail_from", [])),
                "smtp.rcpt_count": str(len(inc.get("rcpt_to", []))),
                "smtp.messages": str(inc.get("messages", 0)),
            }, iid + " envelope")
            if bad:
                case.errors.extend(bad)
            else:
                case.count(form, "envelope_match")

    # false positives
    targets = {norm_host(inc["target_host"]) for inc in incidents if inc.get("target_host")}
    fp = [fr for fr in frames if fr.ours and fr.stream not in allowed and not (
        fr.stream is None and fr.f.get("smtp-over-http.leg") == "dns" and
        norm_host(first(fr.f.get("dns.qry.name", ""))) in targets)]
    m["fp_frames"] = len(fp)
    if fp:
        by = {}
        for fr in fp:
            by.setdefault(fr.stream, []).append(fr.num)
        for sid, nums in sorted(by.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)):
            what = benign_sids.get(sid) or (
                "stream %d of %s (expected_flag false)" % (sid, unflagged[sid])
                if sid in unflagged else
                "unlabelled stream %s" % sid if sid is not None else "non-TCP frames")
            case.fail("false positive: %d frame(s) on %s (first: %s)"
                      % (len(nums), what, nums[:MAX_DETAILS]))
    return case


# -- driver ----------------------------------------------------------------

def load_case(path):
    with open(path) as f:
        labels = json.load(f)
    stem = os.path.basename(path)[:-len(".labels.json")]
    if labels.get("case", stem) != stem:
        raise LabelError("labels name case %r, file is %s" % (labels.get("case"), stem))
    labels.setdefault("case", stem)
    d = os.path.dirname(path)
    pcap = os.path.join(d, labels.get("capture", stem + ".pcap"))
    md = os.path.join(d, stem + ".md")
    md_text = open(md).read() if os.path.isfile(md) else None
    return labels, pcap, md_text


def run(args):
    label_files = sorted(glob.glob(os.path.join(args.captures, "*.labels.json")))
    if args.only:
        label_files = [p for p in label_files
                       if os.path.basename(p)[:-len(".labels.json")] in args.only]
        missing = set(args.only) - {os.path.basename(p)[:-len(".labels.json")]
                                    for p in label_files}
        if missing:
            print("error: no labels for case(s): %s" % ", ".join(sorted(missing)))
            return 2, []
    if not label_files:
        print("error: no *.labels.json in %s" % args.captures)
        return 2, []
    cases = []
    with TsharkEnv(args.plugin, timeout=args.timeout) as env:
        env.verify_plugin()
        for lf in label_files:
            name = os.path.basename(lf)[:-len(".labels.json")]
            try:
                labels, pcap, md_text = load_case(lf)
                if not os.path.isfile(pcap):
                    raise LabelError("capture %s missing" % os.path.basename(pcap))
                case = evaluate(labels, tshark_fields(env, pcap), md_text)
            except (LabelError, TsharkError, ValueError, KeyError) as e:
                case = Case(name)
                case.fail("%s: %s" % (type(e).__name__, e))
            cases.append(case)
    return 0, cases


def report(cases):
    t = {k: sum(c.m[k] for c in cases) for k in cases[0].m} if cases else {}
    row = "%-34s %9s %6s %13s %9s  %s"
    print(row % ("case", "detected", "fp", "pairing(amb)", "envelope", "result"))
    for c in cases:
        m = c.m
        print(row % (c.name[:34], "%d/%d" % (m["detected"], m["incidents"]), m["fp_frames"],
                     "%d/%d(%d)" % (m["pairing_correct"], m["pairing_total"],
                                    m["pairing_ambiguous"]),
                     "%d/%d" % (m["envelope_match"], m["envelope_total"]),
                     "ok" if c.ok else "FAIL"))
    for c in cases:
        for e in c.errors:
            print("FAIL %s: %s" % (c.name, e))
        for n in c.notes:
            print("note %s: %s" % (c.name, n))
    if t:
        print("detection recall %d/%d, false-positive frames %d, pairing correct %d/%d "
              "(ambiguous %d), envelope match %d/%d" % (
                  t["detected"], t["incidents"], t["fp_frames"], t["pairing_correct"],
                  t["pairing_total"], t["pairing_ambiguous"], t["envelope_match"],
                  t["envelope_total"]))
    forms = {}
    for c in cases:
        for form, f in c.forms.items():
            agg = forms.setdefault(form, dict.fromkeys(f, 0))
            for k, v in f.items():
                agg[k] += v
    for form in sorted(forms):
        f = forms[form]
        print("form %-14s detection %d/%d, pairing correct %d/%d (ambiguous %d), envelope match %d/%d" % (
            form, f["detected"], f["incidents"], f["pairing_correct"], f["pairing_total"],
            f["pairing_ambiguous"], f["envelope_match"], f["envelope_total"]))
    if t:
        t["forms"] = forms
    passed = sum(1 for c in cases if c.ok)
    print("%d passed, %d failed" % (passed, len(cases) - passed))
    return t


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--plugin", required=True, help="path of the built smtp-over-http.so")
    ap.add_argument("--captures", default=os.path.join(here, "..", "..", "captures"),
                    help="directory holding <case>.pcap/.labels.json/.md")
    ap.add_argument("--only", action="append", metavar="CASE", help="check only CASE (repeatable)")
    ap.add_argument("--json", metavar="OUT", help="write the metrics as JSON to OUT")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per tshark run")
    args = ap.parse_args(argv)
    try:
        rc, cases = run(args)
    except TsharkError as e:
        print("error: %s" % e)
        return 2
    if rc:
        return rc
    totals = report(cases)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"totals": totals,
                       "cases": [dict(case=c.name, ok=c.ok, errors=c.errors, notes=c.notes,
                                      **c.m) for c in cases]}, f, indent=2)
            f.write("\n")
    return 0 if all(c.ok for c in cases) else 1


if __name__ == "__main__":
    sys.exit(main())
