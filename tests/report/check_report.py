#!/usr/bin/env python3
"""Check soh-report against the labelled lab captures.

    check_report.py --report BUILD/tools/soh-report --plugin PLUGIN.so --captures DIR

soh-report runs tshark with the given plugin build (``--plugin``).  Checks:

- JSON output over every ``captures/*.pcap`` (files given one by one, two
  jobs): exit code 1, no error, and for every capture exactly one reported
  incident per labelled incident that the design says must be flagged
  (``expected_flag`` not false), matched by client endpoint, with the labelled
  method, target as written, status, status code, recipient count, HELO,
  senders and accepted messages; its ``outcome`` is ``messages-accepted``
  when the labels count accepted messages, one of the seven outcomes
  otherwise; no incident without a label;
- the ``filter`` of every reported incident, applied with
  ``tshark -2 -r CAPTURE -Y FILTER -T fields -e tcp.stream`` (run as in the
  capture tests, through tests/captures/tshark_env.py: unprivileged, with the
  plugin under test as a personal plugin), selects frames of exactly the
  incident's streams as the report lists them (tcp_stream, tunnel_stream,
  relay_stream, candidates, chain_streams), and any frame without a TCP
  stream is a DNS answer the plugin marks as the incident's (leg ``dns``);
- CSV output of the same run parses with the csv module into the same rows as
  the JSON incidents (list cells: one item per line), outcome and filter
  included;
- text output: one line per incident, in the JSON order, with the same
  ``outcome=`` and, ending the line, the same ``filter=``;
- exit codes: 0 on benign_only.pcap (and nothing printed), 1 on
  connect_ip_tinyproxy.pcap, 2 on a run mixing a good capture with a
  truncated capture and a file that is not a capture; the good capture's
  incidents are still reported and each bad file is named in the errors;
- directory mode: a directory argument reads its capture files (by
  extension), not its subdirectories unless -r is given.

Prints one line per check and exits 0 when all pass, 1 otherwise.
Standard library only.
"""

import argparse
import csv
import glob
import io
import json
import os
import shutil
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, "captures"))
from tshark_env import TsharkEnv, TsharkError  # noqa: E402

FAILURES = []

# smtp-over-http.outcome: what the mail server did.
OUTCOMES = ("messages-accepted", "recipients-accepted", "rejected", "no-mail",
            "dropped", "not-reached", "unknown")


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what))
    if not cond:
        FAILURES.append(what)
    return cond


def run(report, plugin, args, timeout=1800):
    cmd = [sys.executable, report, "--plugin", plugin, "--no-progress"] + list(args)
    r = subprocess.run(cmd, capture_output=True, timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def load_labels(captures):
    labels = {}
    for f in sorted(glob.glob(os.path.join(captures, "*.labels.json"))):
        with open(f) as fh:
            d = json.load(fh)
        labels[os.path.join(captures, d["capture"])] = d
    return labels


def expected_incidents(label):
    return [i for i in label["incidents"] if i.get("expected_flag", True)]


def csv_cell(v, is_list):
    if is_list:
        return "\n".join(str(x) for x in v)
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def check_json_run(report, plugin, labels):
    caps = sorted(labels)
    rc, out, err = run(report, plugin, ["-o", "json", "-j", "2"] + caps)
    check(rc == 1, "json run over %d captures exits 1 (got %d)" % (len(caps), rc))
    try:
        doc = json.loads(out)
    except ValueError as e:
        check(False, "json output parses (%s); stderr: %s" % (e, err.strip()))
        return None
    check(doc.get("errors") == [], "json run reports no error: %r" % doc.get("errors"))
    by_cap = {}
    for inc in doc["incidents"]:
        by_cap.setdefault(inc["capture"], []).append(inc)
    summaries = {s["capture"]: s for s in doc["captures"]}
    for cap in caps:
        name = os.path.basename(cap)
        want = expected_incidents(labels[cap])
        got = by_cap.get(cap, [])
        check(summaries.get(cap, {}).get("incidents") == len(got),
              "%s: capture summary counts the incidents it lists" % name)
        check(len(got) == len(want), "%s: %d incident(s) reported, %d labelled"
              % (name, len(got), len(want)))
        # Several requests on one connection (labels request_index) are
        # reported in the order of their request frames.
        got_by_client, want_by_client = {}, {}
        for g in got:
            got_by_client.setdefault(g["client"], []).append(g)
        for lab in want:
            want_by_client.setdefault(lab["client"], []).append(lab)
        for lab in want:
            gs = sorted(got_by_client.get(lab["client"], []), key=lambda g: g["connect_in"] or 0)
            same = sorted(want_by_client[lab["client"]], key=lambda l: l.get("request_index", 0))
            if not check(len(gs) == len(same), "%s %s (%s): reported once (got %d for %d labelled)"
                         % (name, lab["id"], lab["client"], len(gs), len(same))):
                continue
            g = gs[same.index(lab)]
            facts = [
                ("method", g["method"], lab["method"]),
                ("target", g["target"], lab["target"]),
                ("status", g["status"], lab["status"]),
                ("status_code", g["status_code"], lab["status_code"]),
                ("rcpt_count", g["rcpt_count"], len(lab["rcpt_to"] or [])),
                ("helo", g["helo"], lab["helo"]),
                ("mail_from", g["mail_from"], lab["mail_from"] or []),
                ("messages", g["messages"], lab["messages"]),
            ]
            bad = ["%s %r != label %r" % (k, a, b) for k, a, b in facts if a != b]
            check(not bad, "%s %s: method, target, status, code, recipients, envelope "
                  "match the labels%s" % (name, lab["id"], (": " + "; ".join(bad)) if bad else ""))
            check(g["time"] and g["time"].endswith("Z") and "T" in g["time"],
                  "%s %s: ISO 8601 UTC time %r" % (name, lab["id"], g["time"]))
            check(g["connect_in"] is not None and g["connect_in"] in g["frames"],
                  "%s %s: request frame %r among the frames to open %r"
                  % (name, lab["id"], g["connect_in"], g["frames"]))
            if lab["messages"]:
                check(g["outcome"] == "messages-accepted",
                      "%s %s: %d message(s) accepted per the labels: outcome %r is "
                      "messages-accepted" % (name, lab["id"], lab["messages"], g["outcome"]))
            else:
                check(g["outcome"] in OUTCOMES,
                      "%s %s: no message per the labels: outcome %r is one of %s"
                      % (name, lab["id"], g["outcome"], "/".join(OUTCOMES)))
        labelled = {lab["client"] for lab in want}
        extra = [g["client"] for g in got if g["client"] not in labelled]
        check(not extra, "%s: no unlabelled incident %r" % (name, extra))
    return doc


def check_csv_run(report, plugin, labels, doc):
    caps = sorted(labels)
    rc, out, err = run(report, plugin, ["-o", "csv", "-j", "2"] + caps)
    check(rc == 1, "csv run exits 1 (got %d)" % rc)
    rows = list(csv.reader(io.StringIO(out, newline="")))
    if not check(len(rows) >= 1, "csv output has a header"):
        return
    header, body = rows[0], rows[1:]
    check(len(body) == len(doc["incidents"]), "csv has one row per JSON incident (%d vs %d)"
          % (len(body), len(doc["incidents"])))
    expect = []
    for inc in doc["incidents"]:
        expect.append([csv_cell(inc[c], isinstance(inc[c], list)) for c in header])
    check(header[:1] == ["capture"] and set(header) <= set(doc["incidents"][0]),
          "csv header names JSON keys")
    check(body == expect, "csv rows equal the JSON incidents cell by cell")
    if check("outcome" in header and "filter" in header,
             "csv header has the outcome and filter columns"):
        col = header.index("outcome")
        got = [r[col] for r in body]
        want = [csv_cell(i["outcome"], False) for i in doc["incidents"]]
        check(got == want, "csv and json agree on the outcome of every incident")


def text_dash(v):
    return "-" if v is None or v == "" else str(v)


def check_text_run(report, plugin, labels, doc):
    caps = sorted(labels)
    rc, out, err = run(report, plugin, caps)
    lines = out.splitlines()
    check(rc == 1 and len(lines) == len(doc["incidents"]),
          "text run: exit 1 and one line per incident (%d lines, %d incidents, exit %d)"
          % (len(lines), len(doc["incidents"]), rc))
    outcomes, filters = [], []
    for line in lines:
        m = re.search(r" outcome=(\S+) ", line)
        outcomes.append(m.group(1) if m else None)
        head, sep, flt = line.partition(" filter=")
        filters.append(flt if sep else None)
    check(outcomes == [text_dash(i["outcome"]) for i in doc["incidents"]],
          "text and json agree on the outcome of every incident")
    check(filters == [text_dash(i["filter"]) for i in doc["incidents"]],
          "text lines end with the filter of the json incidents")


def incident_streams(inc):
    """The TCP streams of an incident, as the report lists them."""
    streams = {inc["tcp_stream"]}
    for k in ("tunnel_stream", "relay_stream"):
        if inc[k] is not None:
            streams.add(inc[k])
    streams.update(inc["candidates"])
    streams.update(inc.get("chain_streams") or [])
    return streams


def check_filters(plugin, doc, jobs=4):
    """Apply each incident's filter with tshark: it selects exactly the
    incident's streams (and, outside TCP, only the DNS answers it rests on)."""
    incs = doc["incidents"]
    check(all(i["filter"] for i in incs),
          "every reported incident has a filter (%d without)"
          % sum(1 for i in incs if not i["filter"]))
    incs = [i for i in incs if i["filter"]]
    try:
        with TsharkEnv(plugin) as env:
            env.verify_plugin()
            staged = {}
            for inc in incs:
                if inc["capture"] not in staged:
                    staged[inc["capture"]] = env.stage(inc["capture"])

            def apply(inc):
                out, _ = env.run(["-n", "-2", "-r", staged[inc["capture"]],
                                  "-Y", inc["filter"], "-T", "fields",
                                  "-e", "tcp.stream", "-e", "frame.number",
                                  "-e", "smtp-over-http.leg"])
                return [l.split("\t") for l in out.splitlines() if l.strip()]

            with ThreadPoolExecutor(max_workers=jobs) as pool:
                results = list(pool.map(apply, incs))
    except TsharkError as e:
        check(False, "tshark applies the incident filters: %s" % e)
        return
    for inc, rows in zip(incs, results):
        what = "%s stream %d: filter %r" % (os.path.basename(inc["capture"]),
                                            inc["tcp_stream"], inc["filter"])
        got = {int(r[0]) for r in rows if r[0]}
        want = incident_streams(inc)
        check(got == want, "%s selects the streams %s (got %s)"
              % (what, sorted(want), sorted(got)))
        other = [r[1] for r in rows if not r[0] and (len(r) < 3 or r[2] != "dns")]
        check(not other, "%s selects outside TCP only DNS answers (leg dns) "
              "(other frames: %s)" % (what, other))


def check_exit_codes(report, plugin, captures, tmp):
    benign = os.path.join(captures, "benign_only.pcap")
    rc, out, err = run(report, plugin, [benign])
    check(rc == 0 and out == "", "benign_only.pcap: exit 0, nothing printed (exit %d, %r)"
          % (rc, out[:200]))

    one = os.path.join(captures, "connect_ip_tinyproxy.pcap")
    rc, out, err = run(report, plugin, [one])
    check(rc == 1 and len(out.splitlines()) == 1,
          "connect_ip_tinyproxy.pcap: exit 1, one incident line (exit %d)" % rc)

    bad = os.path.join(tmp, "bad")
    os.makedirs(bad)
    good = os.path.join(bad, "good.pcap")
    shutil.copyfile(one, good)
    trunc = os.path.join(bad, "truncated.pcap")
    with open(one, "rb") as f:
        data = f.read()
    with open(trunc, "wb") as f:
        f.write(data[:len(data) // 3 + 7])
    junk = os.path.join(bad, "notes.pcap")
    with open(junk, "w") as f:
        f.write("This is a text file with a capture file name, not a capture.\n" * 20)
    missing = os.path.join(bad, "missing.pcap")
    rc, out, err = run(report, plugin, ["-o", "json", junk, trunc, missing, good])
    check(rc == 2, "good + truncated + non-capture + missing file: exit 2 (got %d)" % rc)
    try:
        d = json.loads(out)
    except ValueError:
        check(False, "json output still written after errors; stderr: %s" % err.strip())
        return
    err_paths = {e["path"] for e in d["errors"]}
    check({junk, trunc, missing} <= err_paths and good not in err_paths,
          "each bad file is named in the errors, the good one is not: %r" % sorted(err_paths))
    good_incs = [i for i in d["incidents"] if i["capture"] == good]
    check(len(good_incs) == 1 and good_incs[0]["client"] == "192.0.2.10:40201",
          "the good capture's incident is still reported")
    for p in (junk, trunc, missing):
        check(os.path.basename(p) in err, "stderr names %s" % os.path.basename(p))


def check_directory_mode(report, plugin, captures, tmp):
    d = os.path.join(tmp, "dir")
    sub = os.path.join(d, "sub")
    os.makedirs(sub)
    shutil.copyfile(os.path.join(captures, "connect_ip_tinyproxy.pcap"),
                    os.path.join(d, "a.pcap"))
    shutil.copyfile(os.path.join(captures, "benign_only.pcap"), os.path.join(d, "b.pcap"))
    shutil.copyfile(os.path.join(captures, "connect_ip_squid.pcap"),
                    os.path.join(sub, "c.pcap"))
    with open(os.path.join(d, "readme.txt"), "w") as f:
        f.write("not a capture\n")
    rc, out, err = run(report, plugin, ["-o", "json", d])
    doc = json.loads(out) if out.strip() else {"captures": [], "incidents": []}
    names = sorted(os.path.relpath(c["capture"], d) for c in doc["captures"])
    check(rc == 1 and names == ["a.pcap", "b.pcap"] and len(doc["incidents"]) == 1,
          "directory without -r: reads a.pcap and b.pcap only, 1 incident (exit %d, %r)"
          % (rc, names))
    rc, out, err = run(report, plugin, ["-o", "json", "-r", "-j", "2", d])
    doc = json.loads(out) if out.strip() else {"captures": [], "incidents": []}
    names = sorted(os.path.relpath(c["capture"], d) for c in doc["captures"])
    check(rc == 1 and names == ["a.pcap", "b.pcap", os.path.join("sub", "c.pcap")]
          and len(doc["incidents"]) == 3,
          "directory with -r: also sub/c.pcap, 3 incidents (exit %d, %r, %d)"
          % (rc, names, len(doc["incidents"])))
    empty = os.path.join(tmp, "empty")
    os.makedirs(empty)
    rc, out, err = run(report, plugin, [empty])
    check(rc == 2 and "no capture files" in err,
          "directory without captures: exit 2 with a message (exit %d)" % rc)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--report", required=True, help="the soh-report script")
    ap.add_argument("--plugin", required=True, help="smtp-over-http.so to test")
    ap.add_argument("--captures", required=True, help="captures/ directory")
    a = ap.parse_args()
    labels = load_labels(a.captures)
    if not labels:
        print("no labelled captures in %s" % a.captures)
        return 1
    tmp = tempfile.mkdtemp(prefix="soh-report-test-")
    try:
        doc = check_json_run(a.report, a.plugin, labels)
        if doc is not None and doc["incidents"]:
            check_filters(a.plugin, doc)
            check_csv_run(a.report, a.plugin, labels, doc)
            check_text_run(a.report, a.plugin, labels, doc)
        check_exit_codes(a.report, a.plugin, a.captures, tmp)
        check_directory_mode(a.report, a.plugin, a.captures, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("report: %d check(s) failed" % len(FAILURES) if FAILURES else "report: all checks passed")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
