#!/usr/bin/env python3
"""Check the SMTP-over-HTTP configuration profile against every capture.

The profile as the build assembled it (build/profile/SMTP-over-HTTP/: see
profile/CMakeLists.txt) is copied into the temporary tshark home's
~/.config/wireshark/profiles/ next to the freshly built plugin (see
tests/captures/tshark_env.py for why tshark runs as uid 65534 when we are
root). Checks:

1. files: the profile's colorfilters starts with exactly the importable rules
   (profile/smtp-over-http.colorfilters) and its remaining rules are exactly
   the default rules of the Wireshark that runs the test, in order;
2. load: `tshark -C SMTP-over-HTTP` reads the profile (colorfilters and
   preferences) without printing anything on stderr, and the profile's "Leg"
   and "Outcome" columns show smtp-over-http.leg and smtp-over-http.outcome
   on a capture with incidents (read from `-T tabs` output: 4.4 and later
   offer no -e field for a custom column, 4.0 names it _ws.col.Leg);
3. colouring, on every captures/*.pcap and *.pcapng, with
   `tshark -2 --color -C SMTP-over-HTTP -T fields -e frame.number
   -e smtp-over-http.leg -e frame.coloring_rule.name` (tshark evaluates the
   colouring rules only with --color):
   - every frame whose leg is tunnel, hop, relay, attempt or dns gets our
     rule of that leg;
   - every frame without smtp-over-http gets a rule that is not ours, and the
     same rule name as a run without the profile (stock colouring).

4. a single pass (no -2): every frame whose pairing is still tentative gets
   our "tentative" rule, every other frame the rule its leg gets with -2, or
   stock colouring.

Prints per-capture counts and a total; exits 1 on any failure.
Standard library only.
"""

import argparse
import glob
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "captures"))
import tshark_env  # noqa: E402

PROFILE = "SMTP-over-HTTP"
OUR_RULES = {
    "tunnel": "SMTP-over-HTTP tunnel",
    "hop": "SMTP-over-HTTP hop",
    "relay": "SMTP-over-HTTP relay",
    "attempt": "SMTP-over-HTTP attempt",
    "dns": "SMTP-over-HTTP evidence",
}
TENTATIVE = "SMTP-over-HTTP tentative"


def rule_lines(text):
    """The rule lines of a colorfilters file (enabled '@' or disabled '!@')."""
    return [l for l in text.splitlines() if l.startswith("@") or l.startswith("!@")]


def global_config_dir(env):
    out, _ = env.run(["-G", "folders"])
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Global configuration":
            return value.strip()
    raise tshark_env.TsharkError("tshark -G folders lists no global configuration folder")


def check_files(rules_file, profile_dir, stock_file):
    errors = []
    with open(rules_file) as f:
        importable = f.read()
    with open(os.path.join(profile_dir, "colorfilters")) as f:
        profile = f.read()
    with open(stock_file) as f:
        stock = rule_lines(f.read())
    ours = rule_lines(importable)
    names = sorted(list(OUR_RULES.values()) + [TENTATIVE])
    if sorted(r.split("@")[1] for r in ours) != names:
        errors.append("importable rules are not exactly %s" % names)
    if not profile.startswith(importable):
        errors.append("profile colorfilters does not start with the importable rules file")
    rest = rule_lines(profile[len(importable):]) if profile.startswith(importable) else []
    if rest != stock:
        errors.append("profile colorfilters does not end with the %d default rules of %s"
                      % (len(stock), stock_file))
    print("files: %d rules of ours, then %d stock rules from %s: %s"
          % (len(ours), len(rest), stock_file, "ok" if not errors else "FAIL"))
    return errors


def our_columns(line):
    """The Leg and Outcome columns of a `-T tabs` summary line in the
    profile's layout (No., Time, Source, Destination, Protocol, Length, Leg,
    Outcome, Info); tshark puts an arrow column between Source and Destination."""
    cols = [c.strip() for c in line.split("\t")]
    cols = [c for i, c in enumerate(cols) if not (i == 3 and c == "\u2192")]
    return "\t".join(cols[6:8]) if len(cols) > 7 else None


def coloring(env, pcap, profile, passes=2):
    args = ["--color", "-r", pcap, "-T", "fields", "-e", "frame.number",
            "-e", "smtp-over-http.leg", "-e", "frame.coloring_rule.name", "-e", "smtp-over-http.pairing"]
    if passes == 2:
        args = ["-2"] + args
    if profile:
        args = ["-C", PROFILE] + args
    out, err = env.run(args)
    rows = {}
    for line in out.splitlines():
        num, leg, rule, pairing = (line.split("\t") + ["", "", ""])[:4]
        rows[int(num)] = (leg, rule) if passes == 2 else (leg, rule, pairing)
    return rows, err


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--plugin", required=True)
    ap.add_argument("--captures", required=True)
    ap.add_argument("--rules", required=True, help="profile/smtp-over-http.colorfilters")
    ap.add_argument("--profile", required=True,
                    help="the assembled profile folder (build/profile/SMTP-over-HTTP)")
    a = ap.parse_args()

    errors = []
    with tshark_env.TsharkEnv(a.plugin) as env:
        env.verify_plugin()
        pdir = os.path.join(env.home, ".config", "wireshark", "profiles")
        os.makedirs(pdir)
        shutil.copytree(a.profile, os.path.join(pdir, PROFILE))
        env._make_world_readable()

        errors += check_files(a.rules, a.profile,
                              os.path.join(global_config_dir(env), "colorfilters"))

        pcaps = sorted(p for ext in ("pcap", "pcapng") for p in glob.glob(os.path.join(a.captures, "*." + ext)))
        if not pcaps:
            errors.append("no captures in %s" % a.captures)

        # 2. the profile loads silently and its column shows the leg
        if pcaps:
            with_incidents = [p for p in pcaps if "connect_hostname" in p] or pcaps
            first = env.stage(with_incidents[0])
            tabs, err = env.run(["-2", "-C", PROFILE, "-r", first, "-T", "tabs"])
            legs, _ = env.run(["-2", "-r", first, "-T", "fields", "-e", "smtp-over-http.leg",
                               "-e", "smtp-over-http.outcome"])
            shown = [our_columns(l) for l in tabs.splitlines()]
            want = legs.splitlines()
            bad = [i for i in range(max(len(shown), len(want)))
                   if i >= len(shown) or i >= len(want) or shown[i] != want[i]]
            ok = not err.strip() and not bad
            print("load: -C %s stderr %s, Leg and Outcome columns %s: %s"
                  % (PROFILE, "empty" if not err.strip() else repr(err.strip()),
                     "= smtp-over-http.leg and .outcome on every frame" if not bad
                     else "differs on %d frames" % len(bad), "ok" if ok else "FAIL"))
            if not ok:
                errors.append("profile load check failed")

        # 3. colouring on every capture
        total = {"ours": 0, "benign": 0, "benign_same_as_stock": 0}
        print("%-26s %7s %7s %7s %7s %7s %9s" % ("capture", "tunnel", "hop", "relay", "attempt",
                                                   "benign", "as stock"))
        for pcap in pcaps:
            name = os.path.basename(pcap)
            staged = env.stage(pcap)
            prof, err = coloring(env, staged, True)
            if err.strip():
                errors.append("%s: tshark -C %s printed: %s" % (name, PROFILE, err.strip()))
            stock, _ = coloring(env, staged, False)
            if set(prof) != set(stock) or not prof:
                errors.append("%s: frame sets differ between profile and stock runs" % name)
                continue
            counts = {"tunnel": 0, "hop": 0, "relay": 0, "attempt": 0, "dns": 0, "benign": 0, "same": 0}
            for num in sorted(prof):
                leg, rule = prof[num]
                if leg:
                    legs = set(leg.split(","))
                    if len(legs) != 1 or leg not in OUR_RULES:
                        errors.append("%s frame %d: unexpected leg %r" % (name, num, leg))
                        continue
                    counts[leg] += 1
                    if rule != OUR_RULES[leg]:
                        errors.append("%s frame %d: leg %s coloured %r, want %r"
                                      % (name, num, leg, rule, OUR_RULES[leg]))
                else:
                    counts["benign"] += 1
                    if rule in OUR_RULES.values():
                        errors.append("%s frame %d: no smtp-over-http but coloured %r"
                                      % (name, num, rule))
                    if rule == stock[num][1]:
                        counts["same"] += 1
                    else:
                        errors.append("%s frame %d: coloured %r, stock colours it %r"
                                      % (name, num, rule, stock[num][1]))
            print("%-26s %7d %7d %7d %7d %7d %9d" % (name, counts["tunnel"], counts["hop"], counts["relay"],
                                                     counts["attempt"], counts["benign"],
                                                     counts["same"]))
            total["ours"] += counts["tunnel"] + counts["hop"] + counts["relay"] + counts["attempt"] + counts["dns"]
            one, _ = coloring(env, staged, True, passes=1)
            one_stock, _ = coloring(env, staged, False, passes=1)
            for num in sorted(one):
                leg, rule, pairing = one[num]
                want = (TENTATIVE if pairing == "tentative" else OUR_RULES.get(leg) if leg else one_stock[num][1])
                if rule != want:
                    errors.append("%s frame %d, one pass: leg %r pairing %r coloured %r, want %r"
                                  % (name, num, leg, pairing, rule, want))
            total["benign"] += counts["benign"]
            total["benign_same_as_stock"] += counts["same"]

    print("total: %d captures, %d suspect frames (each must carry its leg's rule), %d other frames "
          "(%d coloured as stock)" % (len(pcaps), total["ours"], total["benign"],
                                      total["benign_same_as_stock"]))
    for e in errors[:50]:
        print("FAIL: " + e)
    if len(errors) > 50:
        print("FAIL: ... and %d more" % (len(errors) - 50))
    print("result: %s" % ("FAIL" if errors else "ok"))
    return 1 if errors else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except tshark_env.TsharkError as e:
        print("error: %s" % e)
        sys.exit(1)
