#!/usr/bin/env python3
"""Our output is the same in every Wireshark release: compares the golden
files of each release (tests/captures/golden/<release>/, written by
golden.py with that release's tshark) with those of the oldest one.

Two kinds of difference are expected, both of stock tshark, never of ours;
each is removed from both sides before comparing, and counted:

- fields: tshark 4.0 prints a boolean field as 1 or 0 in -T fields output,
  4.2 and later as True or False (our four boolean fields);
- expert messages of other dissectors, which each release words and raises
  differently (STOCK_EXPERT below says which and why).

Anything else that differs fails: a field value, a frame that carries
smtp-over-http in one release and not another, or one of our expert messages.
Needs no tshark (it reads the committed files). Standard library only.
"""

import argparse
import glob
import os
import re
import sys

BOOLEAN_FIELDS = {"smtp-over-http.smtp", "smtp-over-http.malformed",
                  "smtp-over-http.proxy_auth", "smtp-over-http.smtp.starttls"}
BOOLEAN_TEXT = {"True": "1", "False": "0"}

# Expert items of stock dissectors that differ between releases.
STOCK_EXPERT = [
    ("HTTP request and status lines as Chat items (in 4.0's output only)",
     re.compile(r".*\\r\\n$")),
    ("HTTP 'Illegal characters found in header name' (4.0 also reads the segments after "
     "a malformed request as headers)",
     re.compile(r"^Illegal characters found in header name$")),
    ("TCP 'Ambiguous ACK following Karn's definition' (new in 4.6)",
     re.compile(r"^Ambiguous ACK following Karn's definition$")),
    ("TLS 'legacy_version field MUST be ignored' on a ClientHello (new in 4.2; the "
     "handshake of an HTTPS proxy's leg)",
     re.compile(r"^This legacy_version field MUST be ignored\. The supported_versions extension is present "
                r"and MUST be used instead\.$")),
]


def release_key(name):
    return tuple(int(x) for x in name.split("."))


def normalise_fields(text, counts):
    lines = text.splitlines()
    if not lines:
        return lines
    header = lines[0].split("\t")
    bools = [i for i, h in enumerate(header) if h in BOOLEAN_FIELDS]
    out = [lines[0]]
    for line in lines[1:]:
        cols = line.split("\t")
        for i in bools:
            if i < len(cols) and cols[i] in BOOLEAN_TEXT:
                cols[i] = BOOLEAN_TEXT[cols[i]]
                counts["booleans printed as True/False"] = counts.get(
                    "booleans printed as True/False", 0) + 1
        out.append("\t".join(cols))
    return out


def normalise_expert(text, counts):
    out = []
    for n, line in enumerate(text.splitlines()):
        if n == 0 or "\t" not in line:
            out.append(line)
            continue
        frame, messages = line.split("\t", 1)
        kept = []
        for m in (messages.split(",") if messages else []):
            rule = next((r for r, pat in STOCK_EXPERT if pat.match(m)), None)
            if rule:
                counts[rule] = counts.get(rule, 0) + 1
            else:
                kept.append(m)
        out.append(frame + "\t" + ",".join(kept))
    return out


def normalised(path, counts):
    with open(path) as f:
        text = f.read()
    if path.endswith(".fields.tsv"):
        return normalise_fields(text, counts)
    return normalise_expert(text, counts)


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--golden", default=os.path.join(here, "golden"))
    args = ap.parse_args(argv)

    releases = sorted((d for d in os.listdir(args.golden)
                       if re.match(r"^\d+\.\d+$", d) and os.path.isdir(os.path.join(args.golden, d))),
                      key=release_key)
    if len(releases) < 2:
        print("error: golden files for fewer than two releases in %s: %s" % (args.golden, releases))
        return 1
    base = releases[0]
    names = sorted(os.path.basename(p) for p in glob.glob(os.path.join(args.golden, base, "*.tsv")))
    failed = 0
    for rel in releases[1:]:
        other = sorted(os.path.basename(p) for p in glob.glob(os.path.join(args.golden, rel, "*.tsv")))
        if other != names:
            print("FAIL %s: files differ from %s: missing %s, extra %s"
                  % (rel, base, sorted(set(names) - set(other)), sorted(set(other) - set(names))))
            failed += 1
        counts = {base: {}, rel: {}}
        for name in sorted(set(names) & set(other)):
            a = normalised(os.path.join(args.golden, base, name), counts[base])
            b = normalised(os.path.join(args.golden, rel, name), counts[rel])
            if a != b:
                failed += 1
                bad = [(x, y) for x, y in zip(a, b) if x != y][:3]
                print("FAIL %s vs %s, %s: %d lines differ beyond the expected (%d and %d lines); first:"
                      % (base, rel, name, sum(1 for x, y in zip(a, b) if x != y), len(a), len(b)))
                for x, y in bad:
                    print("  %s: %s\n  %s: %s" % (base, x[:200], rel, y[:200]))
        print("%s vs %s: %d files; expected stock differences removed:" % (base, rel, len(names)))
        for r in sorted(set(counts[base]) | set(counts[rel])):
            print("  %-5d in %s, %-5d in %s: %s" % (counts[base].get(r, 0), base,
                                                  counts[rel].get(r, 0), rel, r))
    print("result: %s" % ("FAIL" if failed else "ok: our fields and expert items are the same in %s"
                          % ", ".join(releases)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
