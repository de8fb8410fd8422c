#!/usr/bin/env python3
"""Where the plugin's instructions go, from a pair of callgrind outputs of
the same tshark command (plugin enabled, plugin disabled).

    bench/split.py ON.callgrind OFF.callgrind [--frames N] [--mode NAME]

Prints one Markdown table row:
  extra      whole-process instructions, enabled minus disabled;
  engine     inclusive cost of the engine's entry points (Correlator::
             on_segment, empty_segment, bare_ack, on_dns, on_decrypted):
             reassembly, SMTP parsing, line stamps for pairing, frame notes;
  rendering  inclusive cost of render() (fields, text, expert items, the
             Info tag, the view of the incident) and of the statistics tap;
  rest       the difference: the per-frame glue (header parse, stream cache,
             the shims' extra call, the post-dissector call) and what the
             plugin changes in Wireshark's own work (hash tables, memory).
With --frames N (frames in incident legs) each figure is also given per
incident frame. Uses callgrind_annotate; standard library only.
"""
import argparse
import re
import subprocess
import sys

ENGINE = re.compile(r"soh::Correlator::(on_segment|empty_segment|bare_ack|on_dns|on_decrypted)\(")
RENDER = re.compile(r"soh::glue::(render|\(anonymous namespace\)::stats_packet)\(")


def inclusive(path):
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--auto=no", "--threshold=100", path],
                         capture_output=True, text=True, check=True).stdout
    total, engine, render = 0, 0, 0
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)$", line)
        if not m:
            continue
        n, name = int(m.group(1).replace(",", "")), m.group(2)
        if name.startswith("PROGRAM TOTALS"):
            total = n
        # Inlined copies are listed under the header that holds them: only
        # the function's own entry (object file named) counts.
        elif not name.endswith("]"):
            continue
        elif ENGINE.search(name):
            engine += n
        elif RENDER.search(name):
            render += n
    return total, engine, render


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("on")
    ap.add_argument("off")
    ap.add_argument("--frames", type=int, default=0, help="frames in incident legs")
    ap.add_argument("--mode", default="", help="name of the first column")
    a = ap.parse_args()
    on, engine, render = inclusive(a.on)
    off, _, _ = inclusive(a.off)
    extra = on - off
    rest = extra - engine - render
    cells = [a.mode, "%.4f" % (on / off)]
    for v in (extra, engine, render, rest):
        cells.append("{:,}".format(v) + (" ({:,})".format(v // a.frames) if a.frames else ""))
    print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
