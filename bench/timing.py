"""Side-by-side timing for the benchmarks: alternate the measurements, report medians.

On a shared machine the CPU a process gets varies from minute to minute (on the 2-core VMs
here, a process sometimes gets one core for a while). Running each measurement in short
segments, alternated, and taking medians keeps a ratio fair; the cores a segment actually got
(process CPU time / wall time) are reported so a reader can see how noisy a run was.
"""

import os
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
