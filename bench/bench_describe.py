#!/usr/bin/env python3
"""Wall and CPU time of one vlens command, repeated (not a test).

    bench/bench_describe.py [-n RUNS] [--env NAME=V1,V2 ...] -- COMMAND...

Runs COMMAND RUNS times (default 15), interleaving the settings of --env
(e.g. --env VLENS_SPIN_US=100,0 runs the command with each value in turn),
and prints, per setting, the median and best wall time and CPU time (user +
sys of the process, from wait4, microsecond resolution) in milliseconds.
"""
import argparse
import os
import statistics
import subprocess
import time


def run_once(cmd, env):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit status {p.returncode}")
    return wall * 1e3, (ru.ru_utime + ru.ru_stime) * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=15)
    ap.add_argument("--env", default=None, help="NAME=V1,V2,...: settings to compare")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    settings = [None]
    if a.env:
        name, values = a.env.split("=", 1)
        settings = [(name, v) for v in values.split(",")]
    res = {s: ([], []) for s in settings}
    for _ in range(a.n):
        for s in settings:
            env = dict(os.environ)
            if s:
                env[s[0]] = s[1]
            w, c = run_once(cmd, env)
            res[s][0].append(w)
            res[s][1].append(c)
    for s, (w, c) in res.items():
        label = f"{s[0]}={s[1]}" if s else "default"
        print(f"{label}: wall median {statistics.median(w):.1f} ms (best {min(w):.1f}), "
              f"CPU median {statistics.median(c):.1f} ms (best {min(c):.1f}), {len(w)} runs")


if __name__ == "__main__":
    main()
