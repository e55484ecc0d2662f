"""Rollout collection speed: extract.py's frames/s against raw CarRacing-v3 stepping, side by side.

    python bench/extract_bench.py [--episodes_per_worker 4] [--raw_steps 3000]

Measures, in one run, in the simulator --env_backend (gymnasium or envpool): raw single-process
CarRacing-v3 steps/s (random actions, nothing saved),
then extract.py's frames/s with 1 and 2 workers for each policy (default: original, which drives
through the untrained V and M, and white, which does not; episodes of up to 1000 frames, written to
a temporary folder, worker start-up included), then raw again. Parallel efficiency =
extract frames/s / (workers x raw steps/s), raw being the mean of the two raw runs.
Target: >= 0.85 with 2 workers on a 2-core machine, for gymnasium (with envpool the agent's V and M
calls, not the simulator, bound extract; its frames/s beside gymnasium's is the measure).
"""

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "WorldModels"))

import argparse

import numpy as np

from common.config import parse_config
from env_equivalence import RawEnv
from stages.rollouts import extract
from timing import machine_description, publish

PAPER_CONFIG = Path(__file__).resolve().parents[1] / "WorldModels" / "configs" / "carracing.config"


def raw_steps_per_second(steps, backend="gymnasium", seed=0):
    """The simulator's own CarRacing-v3 (96x96 frames) with random actions: the environment's own cost."""
    env = RawEnv(backend, seed=seed)
    env.reset()
    actions = np.random.default_rng(seed).uniform([-1, 0, 0], [1, 1, 1], (steps, 3)).astype(np.float32)
    started = time.perf_counter()
    for action in actions:
        env.step(action)
    elapsed = time.perf_counter() - started
    env.close()
    return steps / elapsed


def extract_frames_per_second(workers, episodes, folder, policy, backend):
    config = parse_config(["-c", str(PAPER_CONFIG), "--results_dir", folder, "--exp_name", f"bench{workers}{policy}",
                           "--num_episodes", str(episodes), "--num_workers", str(workers), "--extract_policy", policy,
                           "--env_backend", backend])
    started = time.perf_counter()
    summary = extract(config)
    return summary["frames_collected"] / (time.perf_counter() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes_per_worker", type=int, default=4)
    parser.add_argument("--raw_steps", type=int, default=3000)
    parser.add_argument("--policies", nargs="+", default=["original", "white"],
                        help="exploration policies to time (original drives through the untrained V and M)")
    parser.add_argument("--env_backend", choices=("gymnasium", "envpool"), default="gymnasium",
                        help="the simulator, for the raw steps and extract.py alike")
    args = parser.parse_args()
    print(machine_description())
    with tempfile.TemporaryDirectory() as folder:
        raw_before = raw_steps_per_second(args.raw_steps, args.env_backend)
        extract_fps = {(policy, workers): extract_frames_per_second(workers, workers * args.episodes_per_worker,
                                                                    folder, policy, args.env_backend)
                       for policy in args.policies for workers in (1, 2)}
        raw_after = raw_steps_per_second(args.raw_steps, args.env_backend)
    raw = (raw_before + raw_after) / 2
    print(f"\nraw CarRacing-v3 ({args.env_backend}): {raw:.0f} steps/s "
          f"(before {raw_before:.0f}, after {raw_after:.0f})")
    print(f"{'policy':>9} {'workers':>8} {'extract frames/s':>17} {'efficiency':>11} {'target':>7}")
    for (policy, workers), fps in extract_fps.items():
        target = ">= 0.85" if workers == 2 else ""
        print(f"{policy:>9} {workers:>8} {fps:>17.0f} {fps / (workers * raw):>11.2f} {target:>7}")
    policy = args.policies[0]
    if args.env_backend == "gymnasium":  # envpool's steps are so cheap that V and M bound extract, not the simulator
        publish("extract_bench", [(f"extract.py ({policy}) with 2 workers: frames/s / (2 x raw steps/s)",
                                   extract_fps[policy, 2] / (2 * raw), ">= 0.85")])


if __name__ == "__main__":
    main()
