"""Which exploration policy covers the most track? Mean tiles visited per episode, side by side.

    python bench/policy_coverage.py [-c WorldModels/configs/carracing.config] [--episodes 20]

Runs the same seeds with every policy of extract.py (brownian, white, linear) at the config's
max_frames (paper config: 1000) and prints mean tiles visited, track coverage, length, reward and
motion: the mean absolute change of a pixel between consecutive frames after the opening zoom
(step 50 on), which says how much the data varies (a car that stalls gives near-static frames).
The policy with the highest coverage is extract.py's default (extract_policy).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "WorldModels"))

import argparse

import numpy as np

from config import parse_config
from extract import episode_seed, run_episode
from parallel import run_tasks
from timing import publish

POLICIES = ("brownian", "white", "linear")
PAPER_CONFIG = Path(__file__).resolve().parents[1] / "WorldModels" / "configs" / "carracing.config"


ZOOM_STEPS = 50  # CarRacing zooms in over its first 50 frames


def coverage_task(config, policy, seed):
    """One episode of `policy`: (tiles visited, track tiles, length, reward, motion)."""
    episode = run_episode(argparse.Namespace(**{**vars(config), "extract_policy": policy}), seed)
    frames = episode["obs"][ZOOM_STEPS:].astype(np.float32)
    motion = float(np.mean(np.abs(np.diff(frames, axis=0)))) if len(frames) > 1 else 0.0
    return (episode["tiles_visited"], episode["track_tiles"], len(episode["obs"]),
            float(np.sum(episode["reward"])), motion)


def main():
    argv = sys.argv[1:]
    if "-c" not in argv and "--config" not in argv:
        argv = ["-c", str(PAPER_CONFIG), *argv]
    config = parse_config(argv, description=__doc__.split("\n\n")[0], add_arguments=lambda parser: parser.add_argument(
        "--episodes", type=int, default=20, help="episodes per policy"))
    seeds = [episode_seed(config.seed, index, 0) for index in range(config.episodes)]
    tasks = [(config, policy, seed) for policy in POLICIES for seed in seeds]
    results = {policy: [] for policy in POLICIES}
    for (_, policy, _), result in run_tasks(coverage_task, tasks, config):
        results[policy].append(result)
    print(f"{config.episodes} episodes per policy, max_frames={config.max_frames}, full_episode={config.full_episode}")
    print(f"{'policy':<10} {'tiles visited':>15} {'coverage':>10} {'length':>8} {'reward':>8} {'motion':>8}")
    coverage = {}
    for policy, rows in results.items():
        visited, tiles, length, reward, motion = (np.array(column, dtype=float) for column in zip(*rows, strict=True))
        coverage[policy] = visited.mean()
        print(f"{policy:<10} {visited.mean():8.1f} ± {visited.std():4.1f} {100 * np.mean(visited / tiles):9.1f}% "
              f"{length.mean():8.0f} {reward.mean():8.1f} {motion.mean():8.2f}")

    default = config.extract_policy
    others = [value for policy, value in coverage.items() if policy != default]
    publish("policy_coverage", [(f"tiles visited: the default policy ({default}) / the best other",
                                 coverage[default] / max(others), ">= 1")])


if __name__ == "__main__":
    main()
