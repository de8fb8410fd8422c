#!/usr/bin/env python3
"""Check the statistics tree `-z smtp-over-http,tree` against the lab labels.

For every captures/<case>.labels.json, the incidents the plugin must flag
(all but those with "expected_flag": false) are summed per target as written
("host:port", IPv6 hosts in brackets): incidents, recipients (RCPT TO
commands) and messages accepted. The tree must show exactly those numbers
under "Targets", and the same total under "Incidents", with -2. In a
single pass the incidents are the same, and recipients and messages may be
fewer, never more: a single pass counts what a relay leg carried only once
that leg is known to be the incident's (finality.cpp), which for some
relays is never before the capture ends.

Prints one line per capture and a final "N passed, M failed" line.
"""

import argparse
import glob
import json
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tshark_env import TsharkEnv, TsharkError  # noqa: E402


def expected(labels):
    want = defaultdict(lambda: {"incidents": 0, "recipients": 0, "messages": 0})
    for inc in labels["incidents"]:
        if inc.get("expected_flag") is False:
            continue
        host, port = inc["target_host"], inc["target_port"]
        key = ("[%s]:%d" if ":" in host else "%s:%d") % (host, port)
        want[key]["incidents"] += 1
        want[key]["recipients"] += len(inc.get("rcpt_to") or [])
        want[key]["messages"] += inc.get("messages") or 0
    return dict(want)


def under(got, want):
    """Same targets and incidents; recipients and messages at most the labels'."""
    if set(got) != set(want):
        return False
    return all(g["incidents"] == w["incidents"] and g["recipients"] <= w["recipients"] and
               g["messages"] <= w["messages"] for g, w in ((got[k], want[k]) for k in want))


def parse_tree(text):
    """Target nodes of the stats tree: {target: {incidents, recipients, messages}}."""
    got, total = {}, 0
    section, current = None, None
    for line in text.splitlines():
        if not line.strip() or line.startswith(("=", "-", "Topic", "SMTP over HTTP")):
            continue
        depth = len(line) - len(line.lstrip(" "))
        cols = line.strip().split()
        # The name may hold no blanks (addresses, host:port); the count follows it.
        name, count = cols[0], int(cols[1])
        if depth == 0:
            section = name
            if name == "Incidents":
                total = count
            continue
        if section != "Targets":
            continue
        if depth == 1:
            current = got.setdefault(name, {"incidents": count, "recipients": 0, "messages": 0})
        elif depth == 2 and current is not None and name in ("recipients", "messages"):
            current[name] = count
    return got, total


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plugin", required=True)
    ap.add_argument("--captures", default=os.path.join(os.path.dirname(__file__), "..", "..", "captures"))
    args = ap.parse_args(argv)
    passed = failed = 0
    cases = sorted(glob.glob(os.path.join(args.captures, "*.labels.json")))
    if not cases:
        print("no labelled captures in %s" % args.captures)
        return 1
    try:
        with TsharkEnv(args.plugin) as env:
            env.verify_plugin()
            for path in cases:
                labels = json.load(open(path))
                pcap = env.stage(os.path.join(os.path.dirname(path), labels["capture"]))
                want = expected(labels)
                problems = []
                for mode in ([], ["-2"]):
                    out, _ = env.run(["-n", "-q", "-r", pcap] + mode + ["-z", "smtp-over-http,tree"])
                    got, total = parse_tree(out)
                    where = "two passes" if mode else "one pass"
                    if mode and got != want:
                        problems.append("%s: targets %s, labels say %s" % (where, got, want))
                    if not mode and not under(got, want):
                        problems.append("%s: targets %s, labels say %s (one pass may count fewer "
                                        "recipients and messages, never more)" % (where, got, want))
                    if total != sum(v["incidents"] for v in want.values()):
                        problems.append("%s: Incidents %d" % (where, total))
                name = labels["case"]
                if problems:
                    failed += 1
                    print("FAIL %s\n  %s" % (name, "\n  ".join(problems)))
                else:
                    passed += 1
                    n = sum(v["incidents"] for v in want.values())
                    print("ok   %-22s %d incidents, %d targets" % (name, n, len(want)))
    except TsharkError as e:
        print("error: %s" % e)
        return 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
