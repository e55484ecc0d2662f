"""Is envpool's CarRacing-v3 the same environment as gymnasium's? Frames, rewards, endings, dynamics and speed.

    python bench/env_equivalence.py [--episodes 30] [--max_frames 300] [--policies steady brownian white]

The two simulators cannot be given the same track (each draws its tracks from its own generator), so
the bench compares what can be compared, in one run:
- semantics, on fixed seeds: frame shape and dtype, the reward of a step without a new tile (-0.1),
  the first step's reward, the 1000-step (max_frames) truncation, the zoom-in at the start (how much
  consecutive frames differ in the first 50 steps against later, standing still);
- distributions over --episodes episodes per backend under the same policies (the project's
  exploration policies and a steady drive, each on its own seeds): the score, the length, the tiles
  of the track, tiles reached per step, how often the car leaves the playfield (-100), and the frames'
  colours (mean RGB, road share). For each: both means, the difference with its 95% CI (Welch), and
  the Kolmogorov-Smirnov p-value (small: the distributions differ);
- speed: raw steps/s of each simulator's own 96x96 stepping and through make_env (64x64 frames),
  alternated, and envpool with 2 environments on 2 threads;
- a figure: the raw 96x96 frames of both at the same steps of a steady drive.
Target (bench/run_all.py): envpool >= 5x gymnasium's steps/s through make_env.
The decisive check, the same trained controller scored on 100 episodes in each backend, is
`evaluate.py --env_backend envpool` beside `evaluate.py` (docs/results.md).
Writes results/bench/env_equivalence/{record.json, frames.png}; `--from_record FILE` prints a record's
tables without running.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "WorldModels"))

import argparse
import functools
import time
from importlib.metadata import version

import gymnasium as gym
import numpy as np
from scipy import stats
from tqdm import tqdm

from common.config import parse_config
from common.files import write_json_atomic
from common.plots import image_rows, save_figure
from env import DASHBOARD_ROW, OFF_PLAYFIELD_REWARD, STEP_REWARD, make_env, tile_counts
from stages.policies import brownian_policy, white_policy
from stages.rollouts import run_episode
from stages.vision_metrics import road_share
from timing import add_record_arguments, alternate, machine_description, per_unit, print_from_record, publish

BACKENDS = ("gymnasium", "envpool")
ZOOM_STEPS = 50  # CarRacing zooms in over its first second (50 steps)
FIGURE_STEPS = (0, 25, 50, 150)


def steady_policy(rng):
    """Straight ahead at a steady 30% gas: the dynamics of one action, repeated."""
    return lambda frame: np.array([0.0, 0.3, 0.0], np.float32)


POLICIES = {"steady": steady_policy, "brownian": functools.partial(brownian_policy, dt=0.5), "white": white_policy}


def config_for(backend, max_frames):
    return parse_config(["--env_backend", backend, "--max_frames", str(max_frames), "--min_frames", "1",
                         "--full_episode", "0"])


def semantics(backend, seeds=(0, 1, 2)):
    """What must hold exactly, on fixed seeds, standing still: a dict of measures."""
    config = config_for(backend, 120)
    first_rewards, later_rewards, zoom, still, lengths, truncated_at_end = [], [], [], [], [], []
    for seed in seeds:
        env = make_env(config, seed=seed)
        frames, rewards = [env.reset()[0]], []
        done, truncated = False, False
        while not done:
            frame, reward, terminated, truncated, _ = env.step(np.zeros(3, np.float32))
            frames.append(frame)
            rewards.append(reward)
            done = terminated or truncated
        env.close()
        first_rewards.append(rewards[0])
        later_rewards += rewards[1:]
        changes = np.abs(np.diff(np.stack(frames).astype(np.int16), axis=0)).mean(axis=(1, 2, 3))
        zoom.append(changes[:ZOOM_STEPS].mean())
        still.append(changes[ZOOM_STEPS + 5:].mean())
        lengths.append(len(rewards))
        truncated_at_end.append(bool(truncated))
    raw = RawEnv(backend)
    frame = raw.reset()[0]
    raw.close()
    return {"frame": f"{frame.shape} {frame.dtype}", "first_step_reward": float(np.mean(first_rewards)),
            "still_step_reward_min": float(np.min(later_rewards)),
            "still_step_reward_max": float(np.max(later_rewards)),
            "length_at_max_frames_120": float(np.mean(lengths)), "truncated_at_max_frames": all(truncated_at_end),
            "frame_change_first_50": float(np.mean(zoom)), "frame_change_after": float(np.mean(still))}


class RawEnv:
    """Each simulator's own 96x96 environment (for speed and the figure): reset() -> (frame, info),
    step(action) -> (frame, reward, done), close()."""

    def __init__(self, backend, seed=0, envs=1):
        self.backend, self.envs = backend, envs
        if backend == "envpool":
            import envpool  # here: gymnasium's raw stepping needs no envpool

            self.env = envpool.make("CarRacing-v3", env_type="gymnasium", num_envs=envs, seed=seed,
                                    num_threads=envs, max_episode_steps=1000)
        else:
            self.env, self.seed = gym.make("CarRacing-v3", continuous=True), seed

    def reset(self):
        if self.backend == "envpool":
            frames, info = self.env.reset()
            return (frames[0] if self.envs == 1 else frames), info
        return self.env.reset(seed=self.seed)

    def step(self, action):
        if self.backend == "envpool":
            frames, reward, terminated, truncated, _ = self.env.step(np.tile(action, (self.envs, 1)))
            return frames, reward, terminated | truncated
        frame, reward, terminated, truncated, _ = self.env.step(action)
        if terminated or truncated:
            self.env.reset()
        return frame, reward, terminated or truncated

    def close(self):
        self.env.close()


def episode_measures(episode):
    """One episode's measures: score, length, tiles, tiles per step, off playfield, frame colours."""
    rewards = np.asarray(episode["reward"], np.float64)
    tiles, visited = tile_counts([reward - STEP_REWARD for reward in rewards
                                  if reward != OFF_PLAYFIELD_REWARD and reward - STEP_REWARD > 1e-3])
    frames = episode["obs"][::10]
    return {"score": rewards.sum(), "length": len(rewards), "track_tiles": tiles or np.nan,
            "tiles_per_100_steps": 100.0 * visited / len(rewards),
            "off_playfield": float(rewards[-1] == OFF_PLAYFIELD_REWARD), "mean_red": frames[..., 0].mean(),
            "mean_green": frames[..., 1].mean(), "mean_blue": frames[..., 2].mean(),
            "road_share": road_share(frames / 255.0)}


def distributions(policy, episodes, max_frames):
    """{backend: {measure: per-episode values}} for `episodes` episodes of `policy` in each backend."""
    result = {}
    for backend in BACKENDS:
        config = config_for(backend, max_frames)
        rows = [episode_measures(run_episode(config, 1000 + seed, POLICIES[policy]))
                for seed in tqdm(range(episodes), desc=f"{policy} in {backend}", unit="episode")]
        result[backend] = {key: [float(row[key]) for row in rows] for key in rows[0]}
    return result


def compare(first, second):
    """Both means, the difference (second - first) with Welch's 95% CI, and the KS p-value."""
    first, second = np.asarray(first)[~np.isnan(first)], np.asarray(second)[~np.isnan(second)]
    if np.ptp(np.concatenate([first, second])) == 0:
        return {"gymnasium": float(first.mean()), "envpool": float(second.mean()), "difference": 0.0,
                "low": 0.0, "high": 0.0, "ks_p": 1.0}
    welch = stats.ttest_ind(second, first, equal_var=False).confidence_interval(0.95)
    return {"gymnasium": float(first.mean()), "envpool": float(second.mean()),
            "difference": float(second.mean() - first.mean()), "low": float(welch.low), "high": float(welch.high),
            "ks_p": float(stats.ks_2samp(first, second).pvalue)}


def speed(steps, repeats=3):
    """{name: steps/s}: raw 96x96 stepping of each simulator, make_env's 64x64, envpool with 2 envs."""
    rng = np.random.default_rng(0)
    actions = rng.uniform([-1, 0, 0], [1, 1, 1], (steps, 3)).astype(np.float32)

    def raw_run(backend, envs=1):
        env = RawEnv(backend, envs=envs)
        env.reset()
        for action in actions:
            env.step(action)
        env.close()

    def processed_run(backend):
        env = make_env(config_for(backend, 1000), seed=0)
        env.reset()
        for action in actions:
            if any(env.step(action)[2:4]):
                env.reset()
        env.close()

    measured = alternate({
        "gymnasium raw (96x96)": per_unit(lambda: raw_run("gymnasium"), steps),
        "envpool raw (96x96)": per_unit(lambda: raw_run("envpool"), steps),
        "gymnasium make_env (64x64)": per_unit(lambda: processed_run("gymnasium"), steps),
        "envpool make_env (64x64)": per_unit(lambda: processed_run("envpool"), steps),
        "envpool raw, 2 envs on 2 threads": per_unit(lambda: raw_run("envpool", envs=2), 2 * steps),
    }, repeats)
    return {name: {"steps_per_second": 1.0 / seconds, "cores": cores} for name, (seconds, cores) in measured.items()}


def figure(path, seeds=(0, 1)):
    """Both simulators' raw frames (dashboard included) at FIGURE_STEPS of a steady drive, a row each."""
    rows = []
    for seed in seeds:
        for backend in BACKENDS:
            env = RawEnv(backend, seed=seed)
            frames = [env.reset()[0]]
            for _ in range(max(FIGURE_STEPS)):
                frames.append(np.asarray(env.step(np.array([0.0, 0.3, 0.0], np.float32))[0]).reshape(96, 96, 3))
            env.close()
            rows.append((f"{backend}, seed {seed}", np.stack([frames[step] for step in FIGURE_STEPS])))
    return save_figure(image_rows(rows, title=f"steps {', '.join(map(str, FIGURE_STEPS))} of a steady drive "
                                             f"(rows {DASHBOARD_ROW}-95: dashboard)"),
                       path)


def tables(record):
    """The record's markdown tables: semantics, distributions, speed."""
    lines = ["| semantics (standing still, seeds 0-2) | gymnasium | envpool |", "|---|---|---|"]
    for key in record["semantics"]["gymnasium"]:
        values = [record["semantics"][backend][key] for backend in BACKENDS]
        lines.append(f"| {key} | " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in values) + " |")
    lines += ["", f"| policy: measure ({record['episodes']} episodes of up to {record['max_frames']} steps each) | "
              "gymnasium | envpool | envpool - gymnasium (95% CI) | KS p |", "|---|---:|---:|---|---:|"]
    for policy, measures in record["distributions"].items():
        for key, row in measures.items():
            lines.append(f"| {policy}: {key} | {row['gymnasium']:.3g} | {row['envpool']:.3g} | "
                         f"{row['difference']:+.3g} ({row['low']:+.3g} to {row['high']:+.3g}) | {row['ks_p']:.2g} |")
    base = record["speed"]["gymnasium raw (96x96)"]["steps_per_second"]
    lines += ["", "| stepping | steps/s | x gymnasium raw | cores |", "|---|---:|---:|---:|"]
    for name, row in record["speed"].items():
        lines.append(f"| {name} | {row['steps_per_second']:.0f} | {row['steps_per_second'] / base:.1f} | "
                     f"{row['cores']:.2f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=30, help="episodes per policy and backend")
    parser.add_argument("--max_frames", type=int, default=300)
    parser.add_argument("--policies", nargs="+", choices=list(POLICIES), default=list(POLICIES))
    parser.add_argument("--speed_steps", type=int, default=1000)
    add_record_arguments(parser, "env_equivalence")
    args = parser.parse_args()
    if print_from_record(args, tables):
        return
    machine, started = machine_description(), time.monotonic()
    print(machine)
    folder = Path(args.results_dir)
    folder.mkdir(parents=True, exist_ok=True)
    record = {"machine": machine, "episodes": args.episodes, "max_frames": args.max_frames,
              "envpool": version("envpool"), "gymnasium": gym.__version__,
              "semantics": {backend: semantics(backend) for backend in BACKENDS}, "distributions": {}}
    for policy in args.policies:
        played = distributions(policy, args.episodes, args.max_frames)
        record["distributions"][policy] = {key: compare(played["gymnasium"][key], played["envpool"][key])
                                           for key in played["gymnasium"]}
    record["speed"] = speed(args.speed_steps)
    record["minutes"] = (time.monotonic() - started) / 60
    write_json_atomic(folder / "record.json", record)
    speeds = {name: row["steps_per_second"] for name, row in record["speed"].items()}
    publish("env_equivalence", [("envpool's steps/s through make_env / gymnasium's (64x64 frames, 1 process)",
                                 speeds["envpool make_env (64x64)"] / speeds["gymnasium make_env (64x64)"], ">= 5")])
    print(f"wrote {figure(folder / 'frames.png')}")
    print(f"\n{machine}\n{tables(record)}\nrecord: {folder / 'record.json'}")


if __name__ == "__main__":
    main()
