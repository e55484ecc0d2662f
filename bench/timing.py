"""Side-by-side timing for the benchmarks: alternate the measurements, report medians.

On a shared machine the CPU a process gets varies from minute to minute (on the 2-core VMs
here, a process sometimes gets one core for a while). Running each measurement in short
segments, alternated, and taking medians keeps a ratio fair; the cores a segment actually got
(process CPU time / wall time) are reported so a reader can see how noisy a run was.
publish() hands a benchmark's ratios and targets to run_all.py, which prints them all in one table.
"""

import json
import os
import platform
import sys
import time

import numpy as np


def timed(run):
    """(wall seconds, cores used) of run()."""
    before, started = os.times(), time.perf_counter()
    run()
    wall = time.perf_counter() - started
    after = os.times()
    cpu = (after.user - before.user) + (after.system - before.system)
    return wall, cpu / wall


def per_unit(run, units):
    """A measurement: run() does `units` units of work (steps, frames); returns (seconds per unit, cores)."""
    def measure():
        wall, cores = timed(run)
        return wall / units, cores
    return measure


def alternate(measurements, repeats):
    """Call each measurement repeats times, in turns; return {name: (median seconds per unit, median cores)}.

    measurements: {name: callable() -> (seconds per unit, cores)}, e.g. per_unit(run, units).
    """
    samples = {name: [] for name in measurements}
    for _ in range(repeats):
        for name, measure in measurements.items():
            samples[name].append(measure())
    return {name: (float(np.median([s for s, _ in values])), float(np.median([c for _, c in values])))
            for name, values in samples.items()}


def check(value, target):
    """True if value meets a target written as '>= 0.85', '<= 3' or '< 3'."""
    operator, threshold = target.split()
    return {">=": value >= float(threshold), "<=": value <= float(threshold), "<": value < float(threshold),
            ">": value > float(threshold)}[operator]


def publish(bench, rows):
    """Hand a benchmark's results [(measure, value, target)] to run_all.py, which names a JSON file in
    the BENCH_RESULTS environment variable; a benchmark run on its own only prints its table."""
    path = os.environ.get("BENCH_RESULTS")
    if path:
        with open(path, "a") as file:
            for measure, value, target in rows:
                file.write(json.dumps({"bench": bench, "measure": measure, "value": float(value), "target": target,
                                       "met": bool(check(value, target))}) + "\n")


def machine_description():
    """One line naming what a benchmark ran on: CPU model, cores this process may use, its vector
    extensions (AVX2, FMA, AVX-512...), and TensorFlow's version and whether it uses oneDNN, if loaded."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    vector = sorted(flag for flag in flags if flag.startswith(("avx", "fma", "amx")))
    description = (f"{model}, {len(os.sched_getaffinity(0))} cores, vector extensions: "
                   + (" ".join(vector) if vector else "unknown")
                   + ("" if any(flag.startswith("avx512") for flag in flags) else " (no AVX-512)"))
    if "tensorflow" in sys.modules:
        from common.tensorflow_settings import onednn_enabled
        description += (f"; TensorFlow {sys.modules['tensorflow'].__version__}, oneDNN "
                        + {True: "on", False: "off", None: "unknown"}[onednn_enabled()])
    return description


def add_record_arguments(parser, bench):
    """--results_dir (where the benchmark writes record.json; default results/bench/<bench>) and
    --from_record (print a saved record's tables instead of running)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--results_dir", default=os.path.join(root, "results", "bench", bench))
    parser.add_argument("--from_record", help="print this record's tables and stop")


def print_from_record(args, tables):
    """If --from_record was given, print tables(record) and return True (the benchmark then stops)."""
    if args.from_record:
        with open(args.from_record) as file:
            print(tables(json.load(file)))
    return bool(args.from_record)
