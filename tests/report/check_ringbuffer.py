#!/usr/bin/env python3
"""Check soh-report on ring-buffer sets cut from the lab captures.

    check_ringbuffer.py --report BUILD/tools/soh-report --plugin PLUGIN.so --captures DIR

Every expected result is computed in the same run from the uncut capture:
the report over a set must equal the report over the uncut file, apart from
the file names.  Frame numbers, stream numbers and the filter of a stitched
incident refer to its window (the files in "window", concatenated from packet
"window_first" of the first); the test maps them to the uncut file: frame
numbers by the packets before the window's first packet, tcp.stream numbers by
the connection's addresses and ports.  Most runs use small windows and margins
(--margin 30 --window-packets 120) so that windows start and end inside files
and grow; one uses the defaults.

Checks:
- cuts by packet count (editcap -c) of concurrent_pairing, concurrent_mixed
  and chain, and cuts at chosen frames found from the uncut report: inside
  the request (just before and just after the request frame), between the
  request and the relay leg's SYN, and inside the SMTP dialogue, on
  connect_hostname (whose DNS answer matters), connect_ip_squid and socks5;
- cuts by time (editcap -i) of concurrent_pairing;
- the "capture" of an incident is the file holding its first frame, and its
  "files" lie within its "window";
- not stitched: a set with an hour's gap between two files, two "sensors"
  (another snapshot length), and two files overlapping in time: each gives
  the same report as --no-stitch;
- compressed files (.gz and, where tshark reads it, .zst) in a set give the
  same report as the uncompressed set;
- a set whose last file is cut short in the middle of a packet, plus a file
  that is not a capture and a missing one: exit 2, a line per bad file on
  stderr, and the incidents equal those of the uncut capture cut at the same
  packet; no incident twice.

Prints one line per check and exits 0 when all pass, 1 otherwise.
Standard library only.
"""

import argparse
import glob
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

FAILURES = []
FRAME_COLS = ("connect_in", "response_in", "relay_in", "first_frame", "last_frame")
STREAM_COLS = ("tcp_stream", "tunnel_stream", "relay_stream")
STREAM_LISTS = ("candidates", "chain_streams")
NAME_COLS = ("capture", "files", "window", "window_first")


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what))
    sys.stdout.flush()
    if not cond:
        FAILURES.append(what)
    return cond


def run(report, plugin, args, timeout=600):
    cmd = [sys.executable, report, "--plugin", plugin, "--no-progress"] + list(args)
    r = subprocess.run(cmd, capture_output=True, timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def report_json(report, plugin, args):
    rc, out, err = run(report, plugin, ["-o", "json"] + list(args))
    try:
        return rc, json.loads(out), err
    except ValueError:
        return rc, {"incidents": [], "errors": [], "captures": []}, err


def packets(path):
    # capinfos exits 1 on a file cut short, after counting its whole packets.
    out = subprocess.run(["capinfos", "-T", "-r", "-c", path],
                         capture_output=True).stdout.decode()
    return int(out.split("\t")[-1])


class StreamMap:
    """tcp.stream number -> the connection's endpoints, per (merged) file."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.cache = {}
        self.n = 0

    def of(self, paths, first=1):
        """The window: packets of paths concatenated, from packet first of
        the first file on (a window's last file may end earlier: that only
        adds streams no incident of the window names)."""
        key = (tuple(paths), first)
        if key in self.cache:
            return self.cache[key]
        if len(paths) == 1 and first == 1:
            f = paths[0]
        else:
            self.n += 1
            f = os.path.join(self.tmp, "merged-%d.pcapng" % self.n)
            head = paths[0]
            if first > 1:
                head = os.path.join(self.tmp, "head-%d.pcapng" % self.n)
                subprocess.run(["editcap", "-r", paths[0], head, "%d-%d" % (first, 2 ** 31 - 1)],
                               capture_output=True)
            subprocess.run(["mergecap", "-a", "-w", f, head] + list(paths[1:]),
                           capture_output=True)
        out = subprocess.run(
            ["tshark", "-n", "-r", f, "-Y", "tcp", "-T", "fields",
             "-e", "tcp.stream", "-e", "ip.src", "-e", "ipv6.src", "-e", "tcp.srcport",
             "-e", "ip.dst", "-e", "ipv6.dst", "-e", "tcp.dstport"],
            capture_output=True).stdout.decode()
        m = {}
        for line in out.splitlines():
            f_ = line.split("\t")
            if len(f_) < 7 or not f_[0] or int(f_[0]) in m:
                continue
            a = (f_[1] or f_[2], f_[3])
            b = (f_[4] or f_[5], f_[6])
            m[int(f_[0])] = tuple(sorted([a, b]))
        self.cache[key] = m
        return m


def normalise(inc, offsets, smap, uncut_map):
    """An incident with its locations mapped to the uncut capture and its
    file names dropped.  offsets: packets before each file of the set."""
    d = {k: v for k, v in inc.items() if k not in NAME_COLS}
    window = inc["window"]
    off = offsets[window[0]] + inc["window_first"] - 1
    wmap = smap.of(window, inc["window_first"])
    back = {v: k for k, v in uncut_map.items()}

    def s(n):
        if n is None:
            return None
        return back.get(wmap.get(n), "unmapped %d" % n)

    for c in FRAME_COLS:
        if d.get(c) is not None:
            d[c] += off
    d["frames"] = [f + off for f in d["frames"]]
    for c in STREAM_COLS:
        d[c] = s(d.get(c))
    for c in STREAM_LISTS:
        d[c] = [s(n) for n in d[c]]
    flt = d.get("filter")
    if flt:
        def sub_streams(m):
            return "tcp.stream in {%s}" % ",".join(
                str(x) for x in sorted(s(int(n)) for n in m.group(1).split(",")))

        def sub_frames(m):
            return "frame.number in {%s}" % ",".join(
                str(x) for x in sorted(int(n) + off for n in m.group(1).split(",")))
        flt = re.sub(r"tcp\.stream in \{([0-9,]+)\}", sub_streams, flt)
        flt = re.sub(r"frame\.number in \{([0-9,]+)\}", sub_frames, flt)
        d["filter"] = flt
    return d


def _le(path):
    with open(path, "rb") as f:
        return f.read(4) == b"\xd4\xc3\xb2\xa1"


def canon(incs):
    return sorted(json.dumps(i, sort_keys=True) for i in incs)


# Small windows and margins, so that the lab captures' sets are analysed in
# many windows that start and end inside files and have to grow.
SMALL = ("--margin", "30", "--window-packets", "120")


def compare_set(report, plugin, uncut, files, what, smap, extra_args=SMALL, uncut_doc=None,
                expect_rc=None):
    """The set's report equals the uncut report, apart from file names."""
    if uncut_doc is None:
        _, uncut_doc, _ = report_json(report, plugin, [uncut])
    uncut_map = smap.of([uncut])
    offsets, total = {}, 0
    for f in files:
        offsets[f] = total
        total += packets(f)
    rc, doc, err = report_json(report, plugin, list(extra_args) + list(files))
    if expect_rc is not None and not check(rc == expect_rc, "%s: exit %d (got %d: %s)"
                                           % (what, expect_rc, rc, err.strip()[-300:])):
        return doc
    got = [normalise(i, offsets, smap, uncut_map) for i in doc["incidents"]]
    want = [{k: v for k, v in i.items() if k not in NAME_COLS} for i in uncut_doc["incidents"]]
    same = canon(got) == canon(want)
    detail = ""
    if not same:
        g, w = set(canon(got)), set(canon(want))
        detail = "; only in set: %s; only uncut: %s" % (
            sorted(g - w)[:1], sorted(w - g)[:1])
    check(same, "%s: %d incident(s) over %d file(s) = the uncut report's %d%s"
          % (what, len(got), len(files), len(want), detail[:1500]))
    # Where each incident says it came from.
    ranges = {}
    for f in files:
        ranges[f] = (offsets[f] + 1, offsets[f] + packets(f))
    ok = True
    for i in doc["incidents"]:
        first = i["first_frame"] + offsets[i["window"][0]] + i["window_first"] - 1
        lo, hi = ranges.get(i["capture"], (0, -1))
        if not (lo <= first <= hi and i["files"][0] == i["capture"]
                and set(i["files"]) <= set(i["window"])):
            ok = False
    check(ok, "%s: capture is the file of the first frame, files within window" % what)
    return doc


def cut_at(src, outdir, prefix, cuts):
    """Cut src after each frame number in cuts, dumpcap-style names."""
    os.makedirs(outdir, exist_ok=True)
    n = packets(src)
    bounds = [0] + sorted(c for c in set(cuts) if 0 < c < n) + [n]
    files = []
    for k in range(len(bounds) - 1):
        out = os.path.join(outdir, "%s_%05d_20261207090000.pcap" % (prefix, k))
        subprocess.run(["editcap", "-F", "pcap", "-r", src, out,
                        "%d-%d" % (bounds[k] + 1, bounds[k + 1])], check=True,
                       capture_output=True)
        files.append(out)
    return files


def ring(src, outdir, opt, val):
    os.makedirs(outdir, exist_ok=True)
    subprocess.run(["editcap", opt, str(val), src, os.path.join(outdir, "ring.pcap")],
                   check=True, capture_output=True)
    return sorted(glob.glob(os.path.join(outdir, "ring_*")))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--report", required=True)
    ap.add_argument("--plugin", required=True)
    ap.add_argument("--captures", required=True)
    args = ap.parse_args()
    R, PL, C = args.report, args.plugin, args.captures
    # World-readable: tshark runs as uid 65534 when the test runs as root.
    tmp = tempfile.mkdtemp(prefix="soh-ring-")
    os.chmod(tmp, 0o755)
    try:
        smap = StreamMap(tmp)
        # Cuts by packet count, as dumpcap -b packets / the 400.
        for name, counts in (("concurrent_pairing", (400,)),
                             ("concurrent_mixed", (400,)), ("chain", (60,))):
            src = os.path.join(C, name + ".pcap")
            _, udoc, _ = report_json(R, PL, [src])
            for c in counts:
                files = ring(src, os.path.join(tmp, "%s-c%d" % (name, c)), "-c", c)
                compare_set(R, PL, src, files, "%s cut every %d packets" % (name, c),
                            smap, uncut_doc=udoc, expect_rc=1)
                if name == "concurrent_mixed":
                    compare_set(R, PL, src, files, "%s cut every %d packets, default "
                                "windows" % (name, c), smap, extra_args=(),
                                uncut_doc=udoc, expect_rc=1)
        # Cuts at chosen frames of the first incident with a relay leg.
        for name in ("connect_hostname", "connect_ip_squid", "socks5",
                     "keepalive_squid"):
            src = os.path.join(C, name + ".pcap")
            _, udoc, _ = report_json(R, PL, [src])
            inc = next((i for i in udoc["incidents"] if i["relay_in"]), udoc["incidents"][0])
            req, relay = inc["connect_in"], inc["relay_in"]
            dialogue = (max(inc["response_in"] or 0, relay) + inc["last_frame"]) // 2
            extra, note = SMALL, ""
            if name == "keepalive_squid":
                # The CONNECT follows web requests on the same connection: the
                # plugin needs that connection from its start, which only the
                # margin brings into the window (docs/batch.md, limits).
                extra = ("--margin", "200", "--window-packets", "120")
                note = " with --margin 200"
            for label, cuts in (("before the request", [req - 1]),
                                ("between request and relay SYN", [relay - 1]),
                                ("inside the SMTP dialogue", [dialogue]),
                                ("at all four points", [req - 1, req, relay - 1, dialogue])):
                d = os.path.join(tmp, "%s-%s" % (name, label.replace(" ", "-")))
                files = cut_at(src, d, "cut", cuts)
                compare_set(R, PL, src, files, "%s cut %s (frames %s)%s"
                            % (name, label, cuts, note), smap, uncut_doc=udoc,
                            expect_rc=1, extra_args=extra)
        # Cuts by time.
        src = os.path.join(C, "concurrent_pairing.pcap")
        _, udoc, _ = report_json(R, PL, [src])
        for secs in ("0.1", "0.03"):
            files = ring(src, os.path.join(tmp, "time-%s" % secs), "-i", secs)
            compare_set(R, PL, src, files, "concurrent_pairing cut every %s s (%d files)"
                        % (secs, len(files)), smap, uncut_doc=udoc, expect_rc=1)

        # Not stitched: a gap, another sensor, overlapping files.
        base = ring(src, os.path.join(tmp, "base"), "-c", 900)
        cases = {}
        d = os.path.join(tmp, "gap")
        os.makedirs(d)
        shutil.copy(base[0], d)
        subprocess.run(["editcap", "-t", "3600", base[1], os.path.join(d, os.path.basename(
            base[1]))], check=True, capture_output=True)
        cases["an hour's gap between the files"] = d
        d = os.path.join(tmp, "sensors")
        os.makedirs(d)
        # Another sensor: both files pcap, the second with another snapshot
        # length in its file header (bytes 16-19), as tcpdump -s would write.
        for k in (0, 1):
            subprocess.run(["editcap", "-F", "pcap", base[k],
                            os.path.join(d, os.path.basename(base[k]))],
                           check=True, capture_output=True)
        other = os.path.join(d, os.path.basename(base[1]))
        le = _le(other)
        with open(other, "r+b") as f:
            f.seek(16)
            f.write((65535).to_bytes(4, "little" if le else "big"))
        cases["two sensors (another snapshot length)"] = d
        d = os.path.join(tmp, "overlap")
        os.makedirs(d)
        shutil.copy(base[0], os.path.join(d, "ring_00000_20261207090000.pcap"))
        subprocess.run(["editcap", "-t", "0.01", base[0],
                        os.path.join(d, "ring_00001_20261207090000.pcap")],
                       check=True, capture_output=True)
        cases["two files overlapping in time"] = d
        for what, d in cases.items():
            files = sorted(glob.glob(os.path.join(d, "*")))
            _, stitched, _ = report_json(R, PL, files)
            _, alone, _ = report_json(R, PL, ["--no-stitch"] + files)
            check(canon(stitched["incidents"]) == canon(alone["incidents"])
                  and all(len(i["window"]) == 1 for i in stitched["incidents"]),
                  "not stitched: %s (%d incidents, as with --no-stitch)"
                  % (what, len(stitched["incidents"])))

        # Compressed members of a set.
        files = ring(src, os.path.join(tmp, "comp"), "-c", 400)
        zst_ok = False
        if shutil.which("zstd"):
            subprocess.run(["zstd", "-q", "-f", files[1], "-o", files[1] + ".zst"],
                           check=True)
            zst_ok = subprocess.run(["tshark", "-r", files[1] + ".zst", "-c", "1"],
                                    capture_output=True).returncode == 0
        comp = []
        for k, f in enumerate(files):
            if k == 1 and zst_ok:
                os.unlink(f)
                comp.append(f + ".zst")
                continue
            if k % 2 == 0:
                with open(f, "rb") as fi, gzip.open(f + ".gz", "wb") as fo:
                    fo.write(fi.read())
                os.unlink(f)
                comp.append(f + ".gz")
            else:
                comp.append(f)
            if os.path.exists(f + ".zst"):
                os.unlink(f + ".zst")
        compare_set(R, PL, src, comp, "a set of .gz%s and plain files"
                    % (", .zst" if zst_ok else " (this tshark reads no .zst)"),
                    smap, uncut_doc=udoc, expect_rc=1)
        _, ddoc, _ = report_json(R, PL, [os.path.dirname(files[0])])
        check(len(ddoc["incidents"]) == len(udoc["incidents"]),
              "the same set as a directory argument: %d incidents"
              % len(ddoc["incidents"]))

        # A set whose last file is cut short, a non-capture, a missing file.
        d = os.path.join(tmp, "trunc")
        files = ring(src, d, "-c", 400)
        last = files[-1]
        with open(last, "rb") as f:
            data = f.read()
        with open(last, "wb") as f:
            f.write(data[:len(data) // 2 + 5])
        before = sum(packets(f) for f in files)   # capinfos counts the whole packets
        short = os.path.join(tmp, "uncut-short.pcap")
        subprocess.run(["editcap", "-F", "pcap", "-r", src, short, "1-%d" % before],
                       check=True, capture_output=True)
        junk = os.path.join(d, "ring_00099_20261207090000.pcap")
        with open(junk, "w") as f:
            f.write("not a capture\n" * 10)
        missing = os.path.join(d, "ring_00100_20261207090000.pcap")
        rc, doc, err = report_json(R, PL, files + [junk, missing])
        names = [e["path"] for e in doc["errors"]]
        check(rc == 2 and sorted(names) == sorted([last, junk, missing]),
              "cut-short last file, non-capture, missing file: exit 2, one error each "
              "(exit %d, %r)" % (rc, names))
        check(all(os.path.basename(p) in err for p in (last, junk, missing)),
              "stderr names each bad file")
        ids = [(i["client"], i["time"], i["leg"]) for i in doc["incidents"]]
        check(len(ids) == len(set(ids)), "no incident reported twice")
        compare_set(R, PL, short, files, "the rest of that set = the uncut capture cut at "
                    "packet %d" % before, smap, expect_rc=2)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILURES:
        print("%d check(s) failed" % len(FAILURES))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
