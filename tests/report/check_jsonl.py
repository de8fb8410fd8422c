#!/usr/bin/env python3
"""Check soh-report's JSON lines, its job-runner recipe and Ctrl-C.

    check_jsonl.py --report BUILD/tools/soh-report --plugin PLUGIN.so \\
        --captures DIR --schema tools/soh-report.schema.json

Checks:
- --format jsonl over a ring-buffer set, single captures and a file that is
  not a capture: every line validates against the JSON Schema (with
  python3-jsonschema; the check says so and is skipped without it), the
  incident lines carry the same values as --format json's incidents, and the
  bad file has an error line;
- the multi-machine recipe of docs/batch.md, one soh-report per ring-buffer
  set or folder through GNU parallel --sshlogin ':' (this machine, no ssh;
  skipped without parallel) and through xargs -P: the merged lines, sorted,
  equal those of a single run over the same folders;
- SIGINT (Ctrl-C) during a run over many files: soh-report stops, prints the
  incidents found so far (valid lines) and exits with code 130.

Prints one line per check and exits 0 when all pass, 1 otherwise.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

FAILURES = []


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what))
    sys.stdout.flush()
    if not cond:
        FAILURES.append(what)
    return cond


def cmd(report, plugin, args):
    return [sys.executable, report, "--plugin", plugin, "--no-progress"] + list(args)


def run(report, plugin, args):
    r = subprocess.run(cmd(report, plugin, args), capture_output=True, timeout=600)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--report", required=True)
    ap.add_argument("--plugin", required=True)
    ap.add_argument("--captures", required=True)
    ap.add_argument("--schema", required=True)
    args = ap.parse_args()
    R, PL, C = args.report, args.plugin, args.captures
    tmp = tempfile.mkdtemp(prefix="soh-jsonl-")
    os.chmod(tmp, 0o755)
    try:
        set_a = os.path.join(tmp, "sensor-a")
        os.makedirs(set_a)
        subprocess.run(["editcap", "-c", "400", os.path.join(C, "concurrent_pairing.pcap"),
                        os.path.join(set_a, "ring.pcap")], check=True, capture_output=True)
        set_b = os.path.join(tmp, "sensor-b")
        os.makedirs(set_b)
        subprocess.run(["editcap", "-c", "60", os.path.join(C, "chain.pcap"),
                        os.path.join(set_b, "ring.pcap")], check=True, capture_output=True)
        for name in ("connect_hostname.pcap", "socks5.pcap"):
            shutil.copy(os.path.join(C, name), set_b)
        junk = os.path.join(tmp, "notes.pcap")
        with open(junk, "w") as f:
            f.write("not a capture\n" * 10)

        # JSON lines against the schema, and against -o json.
        rc, out, err = run(R, PL, ["-o", "jsonl", set_a, set_b, junk])
        lines = [json.loads(l) for l in out.splitlines()]
        incs = [l for l in lines if l.get("type") == "incident"]
        errs = [l for l in lines if l.get("type") == "error"]
        check(rc == 2 and len(incs) > 0 and len(errs) == 1 and errs[0]["path"] == junk,
              "jsonl: exit 2, %d incident lines, one error line for the non-capture"
              % len(incs))
        try:
            import jsonschema
        except ImportError:
            jsonschema = None
            print("skip: python3-jsonschema is not installed: lines not validated")
        if jsonschema is not None:
            with open(args.schema) as f:
                schema = json.load(f)
            v = jsonschema.Draft202012Validator(schema)
            bad = [e.message for l in lines for e in v.iter_errors(l)]
            check(not bad, "jsonl: all %d lines validate against %s%s"
                  % (len(lines), os.path.basename(args.schema),
                     (": " + "; ".join(bad[:3])) if bad else ""))
            wrong = dict(incs[0])
            wrong["messages"] = "1"
            check(not v.is_valid(wrong), "jsonl: the schema rejects a count given as text")
        rc, out, err = run(R, PL, ["-o", "json", set_a, set_b, junk])
        doc = json.loads(out)
        stripped = [{k: v for k, v in l.items() if k not in ("type", "schema_version")}
                    for l in incs]
        check(stripped == doc["incidents"] and all(l["schema_version"] == 1 for l in lines),
              "jsonl: incident lines = -o json incidents, schema_version 1")

        # The job-runner recipe: one soh-report per folder, lines merged.
        rc, single, err = run(R, PL, ["-o", "jsonl", set_a, set_b])
        single = sorted(single.splitlines())
        check(rc == 1 and len(single) == len(incs), "single run over both folders: %d lines"
              % len(single))
        gnu = shutil.which("parallel") and b"GNU parallel" in subprocess.run(
            ["parallel", "--version"], capture_output=True).stdout
        if gnu:
            r = subprocess.run(
                ["parallel", "--will-cite", "-S", ":", "-j", "2", "--joblog",
                 os.path.join(tmp, "jobs.log")] + cmd(R, PL, ["-o", "jsonl", "{}"])
                + [":::", set_a, set_b], capture_output=True, timeout=600)
            merged = sorted(r.stdout.decode().splitlines())
            # parallel's exit code counts jobs with a non-zero exit: soh-report
            # exits 1 when it finds incidents, so the job log is what to read.
            with open(os.path.join(tmp, "jobs.log")) as f:
                codes = sorted(int(l.split("\t")[6]) for l in f.readlines()[1:])
            check(merged == single and codes == [1, 1],
                  "GNU parallel -S ':' over the two folders: merged lines = single run "
                  "(%d lines, exit codes %s)" % (len(merged), codes))
        else:
            print("skip: GNU parallel is not installed (package parallel)")
        p1 = subprocess.Popen(["printf", "%s\\0", set_a, set_b], stdout=subprocess.PIPE)
        r = subprocess.run(["xargs", "-0", "-n", "1", "-P", "2"]
                           + cmd(R, PL, ["-o", "jsonl"]), stdin=p1.stdout,
                           capture_output=True, timeout=600)
        p1.wait()
        merged = sorted(r.stdout.decode().splitlines())
        check(merged == single, "xargs -P 2 over the two folders: merged lines = single "
              "run (%d lines)" % len(merged))

        # Ctrl-C: many files, one job, interrupted after the first incident.
        many = os.path.join(tmp, "many")
        os.makedirs(many)
        for k in range(40):
            shutil.copy(os.path.join(C, "connect_ip_tinyproxy.pcap"),
                        os.path.join(many, "copy%02d.pcap" % k))
        p = subprocess.Popen(cmd(R, PL, ["-o", "jsonl", "-j", "1", many]),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        first = p.stdout.readline()
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        try:
            rest, err = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            rest, err = p.communicate()
        got = (first + rest).decode().splitlines()
        ok_lines = all(json.loads(l)["type"] == "incident" for l in got)
        check(p.returncode == 130 and b"interrupted" in err and ok_lines
              and 1 <= len(got) < 40,
              "SIGINT: exit 130 (got %s), 'interrupted' on stderr, %d of 40 incident(s) "
              "printed as valid lines" % (p.returncode, len(got)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILURES:
        print("%d check(s) failed" % len(FAILURES))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
