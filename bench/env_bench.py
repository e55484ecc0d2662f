"""Real steps per second in both simulators: the raw environment and the full agent, side by side in one run.

    python bench/env_bench.py [--steps 600] [--repeats 3]

Measures, alternated --repeats times (medians), with the paper's network sizes (untrained networks
cost the same as trained ones):
1. raw CarRacing-v3 steps/s (random actions, make_env's 64x64 frames) of gymnasium's and envpool's
   simulator, with 1 and 2 processes;
2. the full agent's steps/s (encode the frame with V, step M, act with C: agent.score_episodes)
   with 2 processes, each playing 1 or 8 episodes in lockstep (agent_batch_size; one batched V and M
   call a step), in each simulator.
Target: the full agent in envpool, batched, >= 5x the full agent in gymnasium, batched (today's path).
The workers are bench/controller_bench.py's.
"""

import argparse
import concurrent.futures
import multiprocessing
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "WorldModels"))

import numpy as np

from controller_bench import agent_worker, paper_config, parallel_rate, raw_worker, write_world_model
from timing import machine_description, publish

BACKENDS = ("gymnasium", "envpool")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=600, help="timed steps per process per segment")
    parser.add_argument("--repeats", type=int, default=3, help="segments per measurement, alternated")
    parser.add_argument("--batch", type=int, default=8, help="episodes in lockstep per process, batched")
    args = parser.parse_args()
    print(machine_description())
    with tempfile.TemporaryDirectory() as results:
        configs = {(backend, batch): paper_config(results, "--env_backend", backend, "--agent_batch_size", batch)
                   for backend in BACKENDS for batch in (1, args.batch)}
        write_world_model(configs["gymnasium", 1])
        measures = {}
        for backend in BACKENDS:
            for workers in (1, 2):
                measures[f"raw {backend}, {workers} process{'es' if workers > 1 else ''}"] = (
                    raw_worker, configs[backend, 1], workers)
            for batch in (1, args.batch):
                measures[f"full agent {backend}, 2 processes, {batch} episode{'s' if batch > 1 else ''} each"] = (
                    agent_worker, configs[backend, batch], 2)
        rates = {name: [] for name in measures}
        with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
            for _ in range(args.repeats):
                for name, (worker, config, workers) in measures.items():
                    rates[name].append(parallel_rate(pool, worker, config, args.steps, workers))
    medians = {name: float(np.median(values)) for name, values in rates.items()}
    base = medians[f"full agent gymnasium, 2 processes, {args.batch} episodes each"]
    print(f"\n{'measure':<58} {'steps/s':>9} {'x gymnasium agent':>18}")
    for name, rate in medians.items():
        print(f"{name:<58} {rate:>9.0f} {rate / base:>18.2f}")
    speedup = medians[f"full agent envpool, 2 processes, {args.batch} episodes each"] / base
    print(f"target: the batched agent in envpool >= 5x in gymnasium: {speedup:.2f}x "
          f"({'met' if speedup >= 5 else 'missed'})")
    publish("env_bench", [("full agent steps/s, envpool / gymnasium (2 processes, batched)", speedup, ">= 5")])


if __name__ == "__main__":
    main()
