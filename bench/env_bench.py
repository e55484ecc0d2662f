"""Real steps per second in both simulators: the raw environment and the full agent, side by side in one run.

    python bench/env_bench.py [--steps 600] [--repeats 3]

Measures, alternated --repeats times (medians), with the paper's network sizes (untrained networks
cost the same as trained ones):
1. raw CarRacing-v3 steps/s (random actions, make_env's 64x64 frames) of gymnasium's and envpool's
   simulator, with 1 and 2 processes;
2. the full agent's steps/s (encode the frame with V, step M, act with C: agent.score_episodes)
   with 2 processes, each playing 1 or 8 episodes in lockstep (agent_batch_size; one batched V and M
   call a step), in each simulator.
3. what bounds the batched agent: V's encoder alone (frames/s, 2 processes, --batch frames a call) and
   M's step alone (episode-steps/s, --batch episodes a call), the agent's two networks without the
   simulator; the bound 1 / (1/simulator + 1/encoder + 1/step) is printed beside the measured agent.
Target: the full agent in envpool, batched, >= 5x the full agent in gymnasium, batched (today's path).
The workers are bench/controller_bench.py's. Writes results/bench/env_bench/record.json;
`--from_record FILE` prints a record's table without running.
"""

import argparse
import concurrent.futures
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "WorldModels"))

import numpy as np

from common.files import write_json_atomic
from controller_bench import agent_worker, paper_config, parallel_rate, raw_worker, write_world_model
from timing import add_record_arguments, machine_description, print_from_record, publish

BACKENDS = ("gymnasium", "envpool")


def network_worker(config, steps, seed, network):
    """(calls x agent_batch_size, seconds) of the agent's encoder ("encode": random uint8 frames) or
    M's step ("step") alone in this process, agent_batch_size rows a call, after two untimed calls."""
    from stages.agent import limit_worker_threads, load_agent

    limit_worker_threads(config)
    agent, batch, rng = load_agent(config), config.agent_batch_size, np.random.default_rng(seed)
    frames = rng.integers(0, 256, (batch, 64, 64, 3), np.uint8)
    z, action = rng.normal(size=(batch, config.z_size)).astype(np.float32), np.zeros((batch, 3), np.float32)
    state = np.zeros((batch, config.rnn_size), np.float32)
    call = (lambda: agent.latents(frames, z)) if network == "encode" else (
        lambda: {key: value.numpy() for key, value in agent.step(z, action, state, state).items()})
    call(), call()
    calls = max(1, steps // batch)
    started = time.perf_counter()
    for _ in range(calls):
        call()
    return calls * batch, time.perf_counter() - started


def encoder_worker(config, steps, seed):
    return network_worker(config, steps, seed, "encode")


def step_worker(config, steps, seed):
    return network_worker(config, steps, seed, "step")


def table(record):
    """The record's table: each measure's median steps/s and its ratio to the batched gymnasium agent,
    the bound the networks set on the batched envpool agent, and the target."""
    batch, medians = record["batch"], {name: float(np.median(values)) for name, values in record["rates"].items()}
    base = medians[f"full agent gymnasium, 2 processes, {batch} episodes each"]
    lines = [f"| measure ({record['repeats']} alternated runs, median) | steps/s | x gymnasium agent (batched) |",
             "|---|---:|---:|"]
    lines += [f"| {name} | {rate:.0f} | {rate / base:.2f} |" for name, rate in medians.items()]
    networks = [medians[f"{network} alone, 2 processes, {batch} a call"] for network in ("V's encoder", "M's step")]
    bound = 1.0 / (1.0 / medians["raw envpool, 2 processes"] + sum(1.0 / rate for rate in networks))
    speedup = medians[f"full agent envpool, 2 processes, {batch} episodes each"] / base
    lines += [f"| bound on the batched envpool agent: 1 / (1/raw envpool + 1/encoder + 1/step) | {bound:.0f} | "
              f"{bound / base:.2f} |", "",
              f"Target: the batched agent in envpool >= 5x in gymnasium: {speedup:.2f}x "
              f"({'met' if speedup >= 5 else 'missed'})."]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=600, help="timed steps per process per segment")
    parser.add_argument("--repeats", type=int, default=3, help="segments per measurement, alternated")
    parser.add_argument("--batch", type=int, default=8, help="episodes in lockstep per process, batched")
    add_record_arguments(parser, "env_bench")
    args = parser.parse_args()
    if print_from_record(args, table):
        return
    machine = machine_description()
    print(machine)
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
        for name, worker in (("V's encoder", encoder_worker), ("M's step", step_worker)):
            measures[f"{name} alone, 2 processes, {args.batch} a call"] = (worker, configs["envpool", args.batch], 2)
        rates = {name: [] for name in measures}
        with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
            for _ in range(args.repeats):
                for name, (worker, config, workers) in measures.items():
                    rates[name].append(parallel_rate(pool, worker, config, args.steps, workers))
    record = {"machine": machine, "steps": args.steps, "repeats": args.repeats, "batch": args.batch, "rates": rates}
    folder = Path(args.results_dir)
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "record.json", record)
    print(f"\n{table(record)}\nrecord: {folder / 'record.json'}")
    base = float(np.median(rates[f"full agent gymnasium, 2 processes, {args.batch} episodes each"]))
    speedup = float(np.median(rates[f"full agent envpool, 2 processes, {args.batch} episodes each"])) / base
    publish("env_bench", [("full agent steps/s, envpool / gymnasium (2 processes, batched)", speedup, ">= 5")])


if __name__ == "__main__":
    main()
