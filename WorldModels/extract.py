"""Collect CarRacing rollouts with an exploration policy: one .npz per episode in record/.

    python WorldModels/extract.py -c WorldModels/configs/smoke.config [--num_episodes 8] [--num_workers 2]

Episode i is record/episode_<i>.npz (format in episodes.py). A rerun collects only the episodes
that are missing: a file that is corrupt or not in the format is reported, moved aside as
`*.corrupt` and collected again. Episodes shorter than min_frames are discarded and replaced by
one with a new seed. Each file records its seed, policy and data settings, so
`regenerate_episode(path)` plays it again exactly. With backend=ray the episodes run as Ray tasks.
"""

import re
import time

import numpy as np
from tqdm import tqdm

from config import config_values, parse_config, read_config_text, record_dir, settings_match, stage_folder
from env import make_env, tiles_visited, track_tiles
from episodes import EpisodeFileError, check_episode, episode_bytes, load_episode
from errors import UserFacingError, exit_on_user_error
from files import write_bytes_atomic
from parallel import run_tasks
from policies import make_policy_factory

EPISODE_NAME = re.compile(r"episode_(\d{6,})\.npz")
MAX_ATTEMPTS = 100  # tries to get one episode of at least min_frames before giving up
# A folder of rollouts never mixes these settings (checked against record/extract.config);
# each episode file stores them, so that it can be regenerated from the file alone.
DATA_KEYS = ("env_name", "max_frames", "min_frames", "full_episode", "extract_policy",
             "extract_brownian_dt", "extract_linear_stdev", "seed")


def episode_path(folder, index):
    return folder / f"episode_{index:06d}.npz"


def episode_seed(base_seed, index, attempt):
    """64-bit seed of attempt `attempt` at episode `index`, independent for every (seed, index, attempt)."""
    return int(np.random.SeedSequence([base_seed, index, attempt]).generate_state(1, np.uint64)[0])


def run_episode(config, seed, policy_factory=None):
    """Play one episode; the same config and seed give the same episode. Returns a dict of arrays and stats.

    The track and the policy draw from separate streams derived from `seed`.
    policy_factory(rng) -> act(frame) -> action; default: the config's exploration policy.
    """
    policy_factory = policy_factory or make_policy_factory(config)
    track_seed, policy_seed = np.random.SeedSequence(seed).generate_state(2, np.uint64)
    env = make_env(config, seed=int(track_seed), full_episode=config.full_episode)
    act = policy_factory(np.random.default_rng(policy_seed))
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


def collect_episode(config, index, policy_factory=None, policy_name=None):
    """Worker task: episode `index` as (npz bytes, stats); short episodes are replaced with new seeds."""
    for attempt in range(MAX_ATTEMPTS):
        seed = episode_seed(config.seed, index, attempt)
        episode = run_episode(config, seed, policy_factory)
        if len(episode["obs"]) >= config.min_frames:
            break
    else:
        raise UserFacingError(f"episode {index}: no rollout reached min_frames={config.min_frames} "
                              f"in {MAX_ATTEMPTS} tries; lower min_frames")
    settings = "\n".join(f"{key}={value}" for key, value in config_values(config).items() if key in DATA_KEYS)
    payload = episode_bytes(episode["obs"], episode["action"], episode["reward"], episode["done"],
                            episode["track_tiles"], seed=np.uint64(seed), policy=policy_name or config.extract_policy,
                            settings=settings, tiles_visited=np.int64(episode["tiles_visited"]))
    stats = {"frames": len(episode["obs"]), "reward": float(np.sum(episode["reward"])), "discarded": attempt,
             "coverage": episode["tiles_visited"] / max(episode["track_tiles"], 1)}
    return payload, stats


def regenerate_episode(path):
    """Play the episode stored in `path` again from its seed and settings; returns run_episode's dict."""
    stored = load_episode(path, keys=["seed", "settings"])
    settings = read_config_text(str(stored["settings"]), source=f"{path} (settings)")
    config = parse_config([argument for key, value in settings.items() for argument in (f"--{key}", str(value))])
    return run_episode(config, int(stored["seed"]))


def extracted(config):
    """True if record/ holds episodes 0..num_episodes-1 (each written atomically, so complete)."""
    folder = record_dir(config)
    return (settings_match(folder, "extract.py", config, DATA_KEYS)
            and all(episode_path(folder, index).exists() for index in range(config.num_episodes)))


def find_missing(folder, num_episodes, report=print):
    """(indices in range(num_episodes) without a valid file, frames in the valid ones, files moved aside).

    A file that fails the full check is reported and renamed to *.corrupt (kept for inspection).
    """
    present = {int(m.group(1)): p for p in folder.glob("episode_*.npz") if (m := EPISODE_NAME.fullmatch(p.name))}
    missing, frames, moved = [], 0, 0
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
            moved += 1
    return missing, frames, moved


def extract(config, policy_factory=None, policy_name=None):
    """Collect the missing episodes of config.num_episodes; returns a summary dict. Called by pipeline.py.

    policy_factory (a picklable `factory(rng) -> act`, e.g. a trained controller) replaces the
    config's exploration policy; policy_name is then recorded in the files.
    """
    folder = record_dir(config)
    started = time.monotonic()
    with stage_folder(folder, config, "extract.py", DATA_KEYS):
        missing, existing_frames, moved = find_missing(folder, config.num_episodes, report=tqdm.write)
        print(f"{config.num_episodes - len(missing)} of {config.num_episodes} episodes already in {folder}; "
              f"collecting {len(missing)} with policy '{policy_name or config.extract_policy}' "
              f"({config.backend} backend, num_workers={config.num_workers or 'all cores'})")
        totals = {"episodes": 0, "frames": 0, "reward": 0.0, "discarded": 0, "coverage": 0.0}
        collecting = time.monotonic()
        tasks = [(config, index, policy_factory, policy_name) for index in missing]
        with tqdm(total=len(missing), desc="extract", unit="episode", dynamic_ncols=True) as progress:
            for (_, index, _, _), (payload, stats) in run_tasks(collect_episode, tasks, config,
                                                                name=lambda args: f"episode {args[1]}",
                                                                report=tqdm.write):
                write_bytes_atomic(episode_path(folder, index), payload)
                totals["episodes"] += 1
                for key in ("frames", "reward", "discarded", "coverage"):
                    totals[key] += stats[key]
                progress.set_postfix(frames_per_s=f"{totals['frames'] / (time.monotonic() - collecting):.0f}",
                                     mean_reward=f"{totals['reward'] / totals['episodes']:.1f}")
                progress.update()
    summary = _summary(folder, config, totals, existing_frames, moved, time.monotonic() - started,
                       time.monotonic() - collecting)
    print(summary["text"])
    return summary


def _summary(folder, config, totals, existing_frames, moved, seconds, collecting_seconds):
    collected = totals["episodes"]

    def mean(key):
        return totals[key] / collected if collected else 0.0

    beyond = [p for p in folder.glob("*.npz")
              if not p.name.startswith(".") and not ((m := EPISODE_NAME.fullmatch(p.name))
                                                     and int(m.group(1)) < config.num_episodes)]
    summary = {
        "record_dir": str(folder), "seconds": seconds,
        "episodes_collected": collected, "frames_collected": totals["frames"],
        "discarded_short": totals["discarded"], "moved_aside": moved,
        "mean_length": mean("frames"), "mean_reward": mean("reward"), "mean_track_coverage": mean("coverage"),
        "frames_per_second": totals["frames"] / collecting_seconds if collecting_seconds > 0 else 0.0,
        "episodes_total": config.num_episodes, "frames_total": existing_frames + totals["frames"],
        "other_episode_files": len(beyond),
    }
    lines = [f"collected {collected} episodes, {totals['frames']} frames in {seconds:.0f} s "
             f"({summary['frames_per_second']:.0f} frames/s); discarded {totals['discarded']} shorter than "
             f"min_frames={config.min_frames}; moved {moved} bad files aside"]
    if collected:
        lines.append(f"mean length {summary['mean_length']:.0f}, mean reward {summary['mean_reward']:.1f}, "
                     f"mean track coverage {100 * summary['mean_track_coverage']:.1f}% of tiles")
    lines.append(f"{folder} holds episodes 0..{config.num_episodes - 1} ({summary['frames_total']} frames)"
                 + (f" and {len(beyond)} other episode files, which later stages read too" if beyond else ""))
    summary["text"] = "\n".join(lines)
    return summary


def main(argv=None):
    config = parse_config(argv, description=__doc__.split("\n\n")[0])
    return extract(config)


if __name__ == "__main__":
    with exit_on_user_error():
        main()
