"""Controller-stage speed, measured side by side in one run.

    python bench/controller_bench.py [--workers 2] [--steps 600] [--repeats 3] [--dream_steps 100]

1. The agent's cost: real CarRacing-v3 steps/s of W processes stepping the raw environment with
   random actions, against W processes playing the full agent (frame encoding, MDN-RNN step and
   controller: agent.score_episodes, agent_batch_size episodes in lockstep per process), with the
   paper's network sizes (z 32, LSTM 256, 5 mixtures; untrained networks cost the same). Each
   process times its own stepping after a warm-up (so TensorFlow's start-up is left out). The two
   alternate, --repeats times; medians. Target: agent / raw >= 0.85.
2. The dream: steps/s of agent.play_dreams over the paper's population (64 candidates x 16
   episodes in one batch, this process) against the raw real-env steps/s of the W processes.
   Target: >= 50x.
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

from common.config import parse_config
from common.layout import vision_dir
from controller import num_parameters
from timing import publish

PAPER_CONFIG = Path(__file__).resolve().parents[1] / "WorldModels" / "configs" / "carracing.config"


def paper_config(results_dir, *overrides):
    return parse_config(["-c", str(PAPER_CONFIG), "--results_dir", str(results_dir), *map(str, overrides)])


def write_world_model(config):
    """Untrained vision model and MDN-RNN of the config's sizes, saved where the agent loads them."""
    import json

    from stages.memory import build_rnn
    from stages.vision import build_vision_model

    folder = vision_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    build_vision_model(config, "vae").save(folder / "vae.keras")
    build_rnn(config).save(folder / "rnn.keras")
    (folder / "initial_z.json").write_text(json.dumps({"mu": np.zeros((4, config.z_size)).tolist(),
                                                       "logvar": np.full((4, config.z_size), -3.0).tolist()}))


def raw_worker(config, steps, seed):
    """(steps, seconds) of plain CarRacing stepping with random actions in this process."""
    from env import make_env

    env = make_env(config, seed=seed)
    env.reset()
    started = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    return steps, time.perf_counter() - started


def agent_worker(config, steps, seed):
    """(steps, seconds) of the full agent in this process: agent.score_episodes on batches of
    agent_batch_size episodes until `steps` steps, after one warm-up call (loads and traces)."""
    from stages.agent import score_episodes

    rng = np.random.default_rng(seed)
    batch = config.agent_batch_size
    parameters = rng.normal(scale=0.1, size=(batch, num_parameters(config))).astype(np.float32)
    warm_up = min(2, batch)
    score_episodes(config, parameters[:warm_up], list(range(seed, seed + warm_up)))  # warm-up, not timed
    done, started = 0, time.perf_counter()
    while done < steps:
        _, episode_steps = score_episodes(config, parameters, list(range(seed + done, seed + done + batch)))
        done += int(np.sum(episode_steps))
    return done, time.perf_counter() - started


def parallel_rate(pool, worker, config, steps, workers):
    """Total steps/s of `workers` processes each running worker(config, steps, seed) at once."""
    futures = [pool.submit(worker, config, steps, 1000 * index) for index in range(workers)]
    results = [future.result() for future in futures]
    return sum(done / seconds for done, seconds in results)


def dream_rate(config, steps):
    """Dream steps/s over the paper's population x episodes, in this process."""
    from stages.agent import load_dream, play_dreams

    dream = load_dream(config)
    population = config.controller_num_worker * config.controller_num_worker_trial
    rng = np.random.default_rng(0)
    parameters = rng.normal(scale=0.1, size=(population, num_parameters(config))).astype(np.float32)
    dream.max_frames = steps  # dream episodes of `steps` steps (an untrained done head may end some sooner)
    play_dreams(dream, config, parameters[:2], 2, seed=0)  # warm-up: traces the compiled step
    started = time.perf_counter()
    result = play_dreams(dream, config, parameters, config.controller_num_episode, seed=1)
    return int(result["steps"].sum()) / (time.perf_counter() - started), population * config.controller_num_episode


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="processes for the real environment")
    parser.add_argument("--steps", type=int, default=600, help="timed steps per process per segment")
    parser.add_argument("--repeats", type=int, default=3, help="segments per measurement, alternated")
    parser.add_argument("--dream_steps", type=int, default=100, help="steps of each dream episode")
    parser.add_argument("--agent_batch_size", type=int, default=8, help="episodes in lockstep per process")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as results:
        config = paper_config(results, "--num_workers", args.workers, "--agent_batch_size", args.agent_batch_size)
        write_world_model(config)
        rates = {"raw": [], "agent": []}
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(args.workers, mp_context=context) as pool:
            for _ in range(args.repeats):
                rates["raw"].append(parallel_rate(pool, raw_worker, config, args.steps, args.workers))
                rates["agent"].append(parallel_rate(pool, agent_worker, config, args.steps, args.workers))
        dream, batch = dream_rate(config, args.dream_steps)
    raw, agent = float(np.median(rates["raw"])), float(np.median(rates["agent"]))
    print(f"\n{'measure':<72} {'steps/s':>9} {'ratio':>7} {'target':>8}")
    print(f"{f'raw CarRacing-v3, {args.workers} processes, random actions':<72} {raw:>9.0f}")
    label = f"full agent (encode + RNN step + controller), {args.workers} processes, batch {args.agent_batch_size}"
    print(f"{label:<72} {agent:>9.0f} {agent / raw:>7.2f} {'>= 0.85':>8}")
    print(f"{f'dream, {batch} episodes in one batch, 1 process (vs raw real env)':<72} {dream:>9.0f} "
          f"{dream / raw:>7.0f}x {'>= 50x':>8}")
    print(f"(segments: raw {', '.join(f'{rate:.0f}' for rate in rates['raw'])}; "
          f"agent {', '.join(f'{rate:.0f}' for rate in rates['agent'])})")
    publish("controller_bench", [(f"full agent / raw env steps/s ({args.workers} processes)", agent / raw, ">= 0.85"),
                                 ("dream / raw real env steps/s", dream / raw, ">= 50")])


if __name__ == "__main__":
    main()
