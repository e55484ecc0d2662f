"""Collect CarRacing rollouts with an exploration policy: one .npz per episode in record/.

    python WorldModels/extract.py -c WorldModels/configs/smoke.config [--num_episodes 8] [--num_workers 2]

Episode i is record/episode_<i>.npz (format in episodes.py). A rerun collects only the episodes
that are missing: a file that is corrupt or not in the format is reported, moved aside as
`*.corrupt` and collected again. Episodes shorter than min_frames are discarded and replaced by
one with a new seed. Each file records its seed and policy; `run_episode(config, seed)` with the
same config regenerates it exactly. With backend=ray the episodes run as Ray tasks (see README).
"""

import re
import time

import numpy as np
from tqdm import tqdm

from config import check_same_settings, parse_config, record_dir, save_config
from env import make_env, tiles_visited, track_tiles
from episodes import EpisodeFileError, check_episode, episode_bytes
from errors import UserFacingError, exit_on_user_error
from files import folder_lock, remove_stale_temporaries, write_bytes_atomic
from parallel import run_tasks
from policies import make_policy_factory

EPISODE_NAME = re.compile(r"episode_(\d+)\.npz")
MAX_ATTEMPTS = 100  # tries to get one episode of at least min_frames before giving up
# A folder of rollouts never mixes these settings (checked against record/extract.config).
DATA_KEYS = ("env_name", "max_frames", "min_frames", "full_episode", "extract_policy",
             "extract_brownian_dt", "extract_linear_stdev", "seed")


def episode_path(folder, index):
    return folder / f"episode_{index:06d}.npz"


def episode_seed(base_seed, index, attempt):
    """Seed of attempt `attempt` at episode `index`: independent streams for every (seed, index, attempt)."""
    return int(np.random.SeedSequence([base_seed, index, attempt]).generate_state(1)[0])


def run_episode(config, seed, policy_factory=None):
    """Play one episode; the same config and seed give the same episode. Returns a dict of arrays and stats.

    policy_factory(rng) -> act(frame) -> action; default: the config's exploration policy.
    """
    policy_factory = policy_factory or make_policy_factory(config)
    env = make_env(config, seed=seed, full_episode=config.full_episode)
    act = policy_factory(np.random.default_rng(seed))
    frames, actions, rewards, dones = [], [], [], []
    frame, _ = env.reset()
    done = False
    while not done:
        action = act(frame)
        next_frame, reward, terminated, truncated, _ = env.step(action)
        done = terminated or truncated
        frames.append(frame)
        actions.append(action)
        rewards.append(reward)
        dones.append(done)
        frame = next_frame
    episode = {"obs": np.stack(frames), "action": np.stack(actions), "reward": np.array(rewards),
               "done": np.array(dones), "track_tiles": track_tiles(env), "tiles_visited": tiles_visited(env)}
    env.close()
    return episode


def collect_episode(config, index):
    """Worker task: episode `index` as (npz bytes, stats); short episodes are replaced with new seeds."""
    for attempt in range(MAX_ATTEMPTS):
        seed = episode_seed(config.seed, index, attempt)
        episode = run_episode(config, seed)
        if len(episode["obs"]) >= config.min_frames:
            break
    else:
        raise UserFacingError(f"episode {index}: no rollout reached min_frames={config.min_frames} "
                              f"in {MAX_ATTEMPTS} tries; lower min_frames")
    payload = episode_bytes(episode["obs"], episode["action"], episode["reward"], episode["done"],
                            episode["track_tiles"], seed=np.int64(seed), policy=config.extract_policy,
                            tiles_visited=np.int64(episode["tiles_visited"]))
    stats = {"frames": len(episode["obs"]), "reward": float(np.sum(episode["reward"])), "discarded": attempt,
             "coverage": episode["tiles_visited"] / max(episode["track_tiles"], 1)}
    return payload, stats


def find_missing(folder, num_episodes, report=print):
    """Indices in range(num_episodes) without a valid file, and the frame count of the valid ones.

    A file that fails the full check is reported and renamed to *.corrupt (kept for inspection).
    """
    present = {int(m.group(1)): p for p in folder.glob("episode_*.npz") if (m := EPISODE_NAME.fullmatch(p.name))}
    missing, frames = [], 0
    for index in tqdm(range(num_episodes), desc="checking episodes", unit="file", leave=False,
                      disable=not present):
        if index not in present:
            missing.append(index)
            continue
        try:
            frames += check_episode(present[index], full=True).length
        except EpisodeFileError as error:
            corrupt = present[index].with_name(present[index].name + ".corrupt")
            present[index].replace(corrupt)
            report(f"{error}\n  -> moved to {corrupt.name}; collecting episode {index} again")
            missing.append(index)
    return missing, frames


def extract(config):
    """Collect the missing episodes of config.num_episodes; returns a summary dict. Called by pipeline.py."""
    folder = record_dir(config)
    with folder_lock(folder, "extract.py"):
        remove_stale_temporaries(folder)
        saved_config = folder / "extract.config"
        if saved_config.exists():
            check_same_settings(saved_config, config, DATA_KEYS)
        save_config(config, saved_config)
        missing, existing_frames = find_missing(folder, config.num_episodes, report=tqdm.write)
        print(f"{config.num_episodes - len(missing)} of {config.num_episodes} episodes already in {folder}; "
              f"collecting {len(missing)} with policy '{config.extract_policy}' "
              f"({config.backend} backend, num_workers={config.num_workers or 'all cores'})")
        collected = []
        started = time.monotonic()
        with tqdm(total=len(missing), desc="extract", unit="episode", dynamic_ncols=True) as progress:
            tasks = [(config, index) for index in missing]
            for (_, index), (payload, stats) in run_tasks(collect_episode, tasks, config,
                                                          name=lambda args: f"episode {args[1]}",
                                                          report=tqdm.write):
                write_bytes_atomic(episode_path(folder, index), payload)
                collected.append(stats)
                frames = sum(s["frames"] for s in collected)
                progress.set_postfix(frames_per_s=f"{frames / (time.monotonic() - started):.0f}",
                                     mean_reward=f"{np.mean([s['reward'] for s in collected]):.1f}")
                progress.update()
    summary = _summary(folder, config, collected, existing_frames, time.monotonic() - started)
    print(summary["text"])
    return summary


def _summary(folder, config, collected, existing_frames, seconds):
    frames = sum(s["frames"] for s in collected)
    others = [p for p in folder.glob("*.npz") if not EPISODE_NAME.fullmatch(p.name) and not p.name.startswith(".")]
    summary = {
        "record_dir": str(folder),
        "episodes_collected": len(collected),
        "frames_collected": frames,
        "discarded_short": sum(s["discarded"] for s in collected),
        "mean_length": frames / len(collected) if collected else 0.0,
        "mean_reward": float(np.mean([s["reward"] for s in collected])) if collected else 0.0,
        "mean_track_coverage": float(np.mean([s["coverage"] for s in collected])) if collected else 0.0,
        "frames_per_second": frames / seconds if seconds > 0 else 0.0,
        "episodes_total": config.num_episodes,
        "frames_total": existing_frames + frames,
        "other_episode_files": len(others),
    }
    lines = [f"collected {summary['episodes_collected']} episodes, {frames} frames "
             f"({summary['frames_per_second']:.0f} frames/s); discarded {summary['discarded_short']} shorter than "
             f"min_frames={config.min_frames}"]
    if collected:
        lines.append(f"mean length {summary['mean_length']:.0f}, mean reward {summary['mean_reward']:.1f}, "
                     f"mean track coverage {100 * summary['mean_track_coverage']:.1f}% of tiles")
    lines.append(f"{folder} holds episodes 0..{config.num_episodes - 1} ({summary['frames_total']} frames)"
                 + (f" and {len(others)} other episode files" if others else ""))
    summary["text"] = "\n".join(lines)
    return summary


def main(argv=None):
    config = parse_config(argv, description=__doc__.split("\n\n")[0])
    return extract(config)


if __name__ == "__main__":
    with exit_on_user_error():
        main()
