#!/usr/bin/env python3
"""Golden output of the smtp-over-http plugin on every bundled capture.

Per Wireshark release R ("4.0", "4.4", "4.6") and capture <case>,
tests/captures/golden/R/ holds two files, both made by that release's tshark
with two passes (-2) on the frames that carry smtp-over-http:

  <case>.fields.tsv   frame.number, tcp.stream and every smtp-over-http field
  <case>.expert.tsv   frame.number and _ws.expert.message

The files are kept per release because stock tshark prints them differently
(booleans, HTTP's own expert items); golden_releases.py checks that our part
is the same in every release.

Compare mode (default) compares with the folder of the release of the tshark
that runs; it prints a unified diff per mismatch and exits 1, and exits 77
(skipped) when that folder holds no file yet.  Update mode (--update)
rewrites the files; use tests/captures/update_golden.sh for that.

Standard library only.
"""

import argparse
import difflib
import glob
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tshark_env import PROTO, TsharkEnv, TsharkError, our_fields  # noqa: E402

SKIP = 77
KINDS = ("fields", "expert")
FIELD_OPTS = ["-T", "fields", "-E", "header=y", "-E", "separator=/t",
              "-E", "occurrence=a", "-E", "aggregator=,"]


def captures(d):
    return sorted(p for ext in ("pcap", "pcapng") for p in glob.glob(os.path.join(d, "*." + ext)))


def case_of(path):
    return os.path.basename(path).rsplit(".", 1)[0]


def produce(env, pcap, fields):
    src = env.stage(pcap)
    base = ["-n", "-2", "-r", src, "-Y", PROTO] + FIELD_OPTS
    out = {}
    args = base + ["-e", "frame.number", "-e", "tcp.stream"]
    for f in fields:
        args += ["-e", f]
    out["fields"], _ = env.run(args)
    out["expert"], _ = env.run(base + ["-e", "frame.number", "-e", "_ws.expert.message"])
    return out


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--plugin", required=True)
    ap.add_argument("--captures", default=os.path.join(here, "..", "..", "captures"))
    ap.add_argument("--golden", default=os.path.join(here, "golden"))
    ap.add_argument("--update", action="store_true", help="rewrite the golden files")
    ap.add_argument("--timeout", type=int, default=300)
    args = ap.parse_args(argv)

    caps = captures(args.captures)
    if not caps:
        print("error: no capture in %s" % args.captures)
        return 2
    expected_files = set()
    failed = []
    try:
        with TsharkEnv(args.plugin, timeout=args.timeout) as env:
            release = env.release()
            args.golden = os.path.join(args.golden, release)
            existing = sorted(glob.glob(os.path.join(args.golden, "*.tsv")))
            if not args.update and not existing:
                print("SKIP: no golden files for Wireshark %s in %s yet; generate them with "
                      "tests/captures/update_golden.sh (for another release: through "
                      "scripts/wireshark-env.sh) and review them before committing"
                      % (release, args.golden))
                return SKIP
            print("Wireshark %s: golden files in %s" % (release, os.path.relpath(args.golden)))
            fields = our_fields(env.verify_plugin())
            for pcap in caps:
                case = case_of(pcap)
                got = produce(env, pcap, fields)
                for kind in KINDS:
                    gf = os.path.join(args.golden, "%s.%s.tsv" % (case, kind))
                    expected_files.add(os.path.abspath(gf))
                    if args.update:
                        os.makedirs(args.golden, exist_ok=True)
                        with open(gf, "w") as f:
                            f.write(got[kind])
                        print("wrote %s (%d lines)" % (os.path.relpath(gf),
                                                       got[kind].count("\n")))
                        continue
                    if not os.path.isfile(gf):
                        print("FAIL %s: no golden file %s" % (case, os.path.basename(gf)))
                        failed.append(case)
                        continue
                    with open(gf) as f:
                        want = f.read()
                    if want != got[kind]:
                        print("FAIL %s (%s):" % (case, kind))
                        sys.stdout.writelines(difflib.unified_diff(
                            want.splitlines(True), got[kind].splitlines(True),
                            "golden/%s" % os.path.basename(gf), "actual"))
                        failed.append(case)
                    else:
                        print("ok   %s (%s)" % (case, kind))
    except TsharkError as e:
        print("error: %s" % e)
        return 2

    stale = [p for p in existing if os.path.abspath(p) not in expected_files]
    for p in stale:
        if args.update:
            os.remove(p)
            print("removed stale %s" % os.path.relpath(p))
        else:
            print("FAIL stale golden file without capture: %s" % os.path.basename(p))
            failed.append(os.path.basename(p))
    if args.update:
        return 0
    names = {case_of(p) for p in caps}
    print("%d passed, %d failed" % (len(names - set(failed)), len(set(failed))))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
