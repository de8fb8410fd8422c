#!/usr/bin/env python3
"""Times two commands that take turns on one CPU.

On a shared or virtual machine the speed of a CPU can change by tens of
percent from one second to the next, so two commands run one after the
other can differ by more than the change being measured. Here both run at
once, pinned to the same CPU, and take turns every SLICE_MS (SIGSTOP and
SIGCONT): whatever slows the CPU down slows both alike. Each round prints
the CPU time (user + system) and peak resident set size of each command, as
wait4 reports them, "A_SECONDS A_KIB B_SECONDS B_KIB"; a first round, not
printed, warms the caches. Turns are long (100 ms by default) next to what a
switch costs the caches.

    interleave.py [-n ROUNDS] [-s SLICE_MS] [-c CPU] [-t TIMEOUT_S] "COMMAND A" "COMMAND B"
"""
import argparse
import os
import shlex
import signal
import subprocess
import sys
import time


def start(cmd, cpu):
    # Stops itself before exec, so that neither command starts before its turn.
    argv = ["sh", "-c", 'kill -STOP $$; exec "$@"', "sh", "taskset", "-c", str(cpu)] + cmd
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.waitpid(p.pid, os.WUNTRACED)
    return p.pid


def finished(status, usage):
    if os.WIFSTOPPED(status):
        return None
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        raise RuntimeError("a command failed (status %d)" % status)
    return (usage.ru_utime + usage.ru_stime, usage.ru_maxrss)


def one_round(cmds, cpu, slice_s, first, deadline):
    pids = [start(c, cpu) for c in cmds]
    done = [None, None]
    turn = first
    try:
        while None in done:
            if time.monotonic() > deadline:
                raise RuntimeError("timed out")
            k = turn if done[turn] is None else 1 - turn
            os.kill(pids[k], signal.SIGCONT)
            time.sleep(slice_s)
            pid, status, usage = os.wait4(pids[k], os.WNOHANG)
            if pid == 0:
                os.kill(pids[k], signal.SIGSTOP)
                pid, status, usage = os.wait4(pids[k], os.WUNTRACED)
            done[k] = finished(status, usage)
            turn = 1 - turn
    except BaseException:
        for k in (0, 1):
            if done[k] is None:
                try:  # the one that failed is reaped already
                    os.kill(pids[k], signal.SIGKILL)
                    os.waitpid(pids[k], 0)
                except (ProcessLookupError, ChildProcessError):
                    pass
        raise
    return done


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=9, help="rounds (default 9)")
    ap.add_argument("-s", type=float, default=100, help="turn length in ms (default 100)")
    ap.add_argument("-c", type=int, default=(os.cpu_count() or 1) - 1, help="CPU (default: the last)")
    ap.add_argument("-t", type=float, default=3600, help="time limit of one round in s (default 3600)")
    ap.add_argument("a")
    ap.add_argument("b")
    args = ap.parse_args()
    cmds = [shlex.split(args.a), shlex.split(args.b)]
    try:
        for i in range(args.n + 1):  # round 0 warms up
            (ta, ma), (tb, mb) = one_round(cmds, args.c, args.s / 1000, i % 2, time.monotonic() + args.t)
            if i:
                print("%.4f %d %.4f %d" % (ta, ma, tb, mb), flush=True)
    except RuntimeError as e:
        print("interleave: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
