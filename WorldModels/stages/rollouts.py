"""Rollouts (extract.py's work): collect CarRacing episodes with an exploration policy, one .npz each.

Episode i is record/episode_<i>.npz (format in common/episodes.py); round r >= 1 of collection (say, with
the trained controller) adds record/round<rr>_episode_<i>.npz beside them, and every later stage
reads all of them. record_name picks another folder instead of record/. Policies (stages/policies.py):
original (the original's random controller acting through the untrained agent; the default),
controller (a trained controller, with exploration noise), brownian, white, linear.

A rerun collects only the episodes that are missing: a file that is corrupt or not in the format
is reported, moved aside as `*.corrupt` and collected again. Episodes shorter than min_frames are
discarded and replaced by one with a new seed. Each file records its seeds and the config, so
`regenerate_episode(path)` plays it again exactly. A folder of another implementation's episodes is
described and left alone. With backend=ray the episodes run as Ray tasks.
"""

import re
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common.config import config_values, parse_config, read_config_text, settings_match, settings_of, stage_folder
from common.episodes import EpisodeFileError, check_episode, episode_bytes, load_episode
from common.errors import UserFacingError
from common.files import write_bytes_atomic
from common.layout import controller_path, model_path, record_dir, rnn_path
from common.parallel import run_tasks
from common.progress import progress_bar
from env import driving_state, make_env, tiles_visited, track_tiles
from stages.agent import RECORDED, limit_worker_threads, play_episodes
from stages.policies import AGENT_POLICIES, exploration_agent, make_policy_factory

# episode_000012.npz (round 0) or round01_episode_000012.npz (later rounds of collection)
EPISODE_NAME = re.compile(r"(?:round(\d{2,})_)?episode_(\d{6,})\.npz")
MAX_ATTEMPTS = 100  # tries to get one episode of at least min_frames before giving up
# A round of rollouts never mixes these settings (checked against record/extract.config, or
# extract_roundNN.config for later rounds); each episode file stores the whole config, so that it
# can be regenerated from the file alone.
DATA_KEYS = settings_of("rollouts")


def episode_path(folder, index, round_number=0):
    prefix = f"round{round_number:02d}_" if round_number else ""
    return folder / f"{prefix}episode_{index:06d}.npz"


def agent_driven(config, policy_factory=None):
    """True when the episodes are played through the agent (the original and controller policies),
    batched in lockstep; False for the frame policies and for a given policy_factory."""
    return policy_factory is None and config.extract_policy in AGENT_POLICIES


def episode_index(path, round_number):
    """The episode index of an extract.py file name of round `round_number`, or None."""
    match = EPISODE_NAME.fullmatch(Path(path).name)
    return int(match.group(2)) if match and int(match.group(1) or 0) == round_number else None


def round_script(config):
    """The name a round of collection saves its config under: extract.py, then extract_round01.py, ..."""
    return f"extract_round{config.extract_round:02d}.py" if config.extract_round else "extract.py"


def episode_seed(base_seed, index, attempt, round_number=0):
    """64-bit seed of attempt `attempt` at episode `index` of a round, independent for every combination."""
    entropy = [base_seed, index, attempt] + ([round_number] if round_number else [])
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0])


def split_seed(seed):
    """(track seed, policy seed): the track and the policy draw from separate streams of an episode's seed."""
    track_seed, policy_seed = np.random.SeedSequence(seed).generate_state(2, np.uint64)
    return int(track_seed), int(policy_seed)


def run_episode(config, seed, policy_factory=None):
    """Play one episode; the same config and seed give the same episode. Returns a dict of arrays and stats.

    policy_factory(rng) -> act(frame) -> action; default: the config's exploration policy
    (the agent-driven ones, original and controller, play through play_rollouts).
    """
    if agent_driven(config, policy_factory):
        return play_rollouts(config, [seed])[0]
    policy_factory = policy_factory or make_policy_factory(config)
    track_seed, policy_seed = split_seed(seed)
    env = make_env(config, seed=track_seed, full_episode=config.full_episode)
    frame, _ = env.reset()
    rng = np.random.default_rng(policy_seed)
    # a factory that reads the environment's state (pursuit_driver) takes it as its second argument
    reads_env = getattr(policy_factory, "reads_env", False)
    if reads_env and driving_state(env) is None:
        raise UserFacingError(f"{getattr(policy_factory, '__name__', 'this policy')} reads the car's and the track's "
                              "state, which envpool does not report; use env_backend=gymnasium")
    act = policy_factory(rng, env) if reads_env else policy_factory(rng)
    steps = {key: [] for key in ("obs", "action", "reward", "done", "speed", "on_road")}
    done = False
    while not done:
        state = driving_state(env) or (None, None)  # None: the simulator does not report them (envpool)
        action = act(frame)
        next_frame, reward, terminated, truncated, _ = env.step(action)
        done = terminated or truncated
        for key, value in zip(steps, (frame, action, reward, done, *state), strict=True):
            steps[key].append(value)
        frame = next_frame
    episode = {key: np.array(values) for key, values in steps.items() if values[0] is not None}
    episode.update(track_tiles=track_tiles(env), tiles_visited=tiles_visited(env))
    env.close()
    return episode


def play_rollouts(config, seeds, policy_factory=None):
    """The episodes of `seeds` (a list of run_episode's dicts). Agent-driven policies play them in
    lockstep through the agent (one batched V and M call per step); the others one at a time."""
    if not agent_driven(config, policy_factory):
        return [run_episode(config, seed, policy_factory) for seed in seeds]
    agent, agent_config, parameters_of, action_noise = exploration_agent(config)
    track_seeds, policy_seeds = zip(*(split_seed(seed) for seed in seeds), strict=True)
    parameters = np.stack([parameters_of(np.random.default_rng(seed)) for seed in policy_seeds])
    played = play_episodes(agent, agent_config, parameters, list(track_seeds), record=True,
                           full_episode=config.full_episode, action_noise=action_noise)
    recorded = [key for key in RECORDED if key in played and key != "frames"]  # speed, on_road: not from envpool
    return [{"obs": played["frames"][row], **{key: played[key][row] for key in recorded},
             "track_tiles": played["track_tiles"][row], "tiles_visited": played["tiles_visited"][row]}
            for row in range(len(seeds))]


def collect_episodes(config, indices, policy_factory=None, policy_name=None, keep=None, world_model=None):
    """Worker task: episodes `indices` of the config's round, as [(index, npz bytes, stats)] for the
    indices in `keep` (default: all).

    Episodes shorter than min_frames are discarded and played again with the next attempt's seed.
    Agent-driven episodes are played together, so an episode depends on its batch: a batch is always
    played whole (a rerun that needs one of its episodes plays them all and keeps that one), and each
    file records the seeds it was played with (batch_seeds), so regenerate_episode plays it again.
    world_model: the controller policy's file fingerprint (check_controller_policy), recorded in each file.
    """
    if agent_driven(config, policy_factory):
        limit_worker_threads(config)  # a worker process: share the cores with the other workers
    keep = set(indices if keep is None else keep)
    attempts, collected, pending = dict.fromkeys(indices, 0), [], list(indices)
    # what regenerate_episode needs: the data settings; a controller's episodes need its world model too
    # (found from any working directory: absolute paths)
    stored = config_values(config)
    if config.extract_policy == "controller":
        stored.update(results_dir=str(Path(config.results_dir).resolve()),
                      extract_controller=str(controller_path(config).resolve()))
    else:
        stored = {key: value for key, value in stored.items() if key in DATA_KEYS}
    settings = "\n".join(f"{key}={int(value) if isinstance(value, bool) else value}" for key, value in stored.items())
    extra = {"world_model": world_model} if world_model is not None else {}
    while pending:
        seeds = [episode_seed(config.seed, index, attempts[index], config.extract_round) for index in pending]
        retry = []
        for index, seed, episode in zip(pending, seeds, play_rollouts(config, seeds, policy_factory), strict=True):
            if len(episode["obs"]) < config.min_frames:
                attempts[index] += 1
                if attempts[index] >= MAX_ATTEMPTS:
                    raise UserFacingError(f"episode {index}: no rollout reached min_frames={config.min_frames} "
                                          f"in {MAX_ATTEMPTS} tries; lower min_frames")
                retry.append(index)
                continue
            if index not in keep:  # played only because its batch is played whole
                continue
            payload = episode_bytes(episode["obs"], episode["action"], episode["reward"], episode["done"],
                                    episode["track_tiles"], speed=episode.get("speed"), on_road=episode.get("on_road"),
                                    seed=np.uint64(seed), batch_seeds=np.array(seeds, np.uint64),
                                    policy=policy_name or config.extract_policy, settings=settings,
                                    tiles_visited=np.int64(episode["tiles_visited"]), **extra)
            stats = {"frames": len(episode["obs"]), "reward": float(np.sum(episode["reward"])),
                     "discarded": attempts[index],
                     "coverage": episode["tiles_visited"] / max(episode["track_tiles"], 1)}
            collected.append((index, payload, stats))
        pending = retry
    return collected


def regenerate_episode(path):
    """Play the episode stored in `path` again from its seeds and settings; returns run_episode's dict.
    (A controller-driven episode needs its controller and world model files unchanged.)"""
    keys = ["seed", "settings"] + (["batch_seeds"] if "batch_seeds" in check_episode(path, full=False).keys else [])
    stored = load_episode(path, keys=keys)
    settings = read_config_text(str(stored["settings"]), source=f"{path} (settings)")
    config = parse_config([argument for key, value in settings.items() for argument in (f"--{key}", str(value))])
    seed = int(stored["seed"])
    if "batch_seeds" not in stored:
        return run_episode(config, seed)
    batch_seeds = [int(value) for value in stored["batch_seeds"]]
    return play_rollouts(config, batch_seeds)[batch_seeds.index(seed)]


def extracted(config):
    """True if the record folder holds this round's episodes 0..num_episodes-1 (each written atomically,
    so complete), or holds only another implementation's episodes, which are used as they are."""
    folder = record_dir(config)
    if foreign_episodes(folder) and not has_own_rounds(folder):
        return True
    return (settings_match(folder, round_script(config), config, DATA_KEYS)
            and all(episode_path(folder, index, config.extract_round).exists() for index in range(config.num_episodes)))


def has_own_rounds(folder):
    """True if extract.py has collected into `folder` (it saves a config per round)."""
    return any(Path(folder).glob("extract*.config"))


def foreign_episodes(folder):
    """Episode files not named by extract.py (another World Models implementation names them by a
    random integer), sorted."""
    return sorted(path for path in Path(folder).glob("*.npz")
                  if not path.name.startswith(".") and not EPISODE_NAME.fullmatch(path.name))


def find_missing(folder, num_episodes, round_number, max_frames, report=print):
    """(indices in range(num_episodes) without a valid file in this round, frames in the valid ones,
    files moved aside). A file that fails the full check is reported and renamed to *.corrupt; one that
    extract.py did not write (no seed and settings, or more than max_frames steps) to *.foreign."""
    present = {index: path for path in folder.glob("*episode_*.npz")
               if (index := episode_index(path, round_number)) is not None}
    missing, frames, moved = [], 0, 0
    for index in progress_bar(range(num_episodes), desc="checking episodes", unit="file", leave=False,
                      disable=not present):
        if index not in present:
            missing.append(index)
            continue
        try:
            info = check_episode(present[index], full=True)
            foreign = not {"seed", "settings"} <= set(info.keys) or info.length > max_frames
            if not foreign:
                frames += info.length
                continue
            problem, suffix = (f"{present[index]}: not an episode extract.py wrote ({info.length} steps, keys "
                               f"{', '.join(info.keys)}; max_frames is {max_frames})"), ".foreign"
        except EpisodeFileError as error:
            problem, suffix = str(error), ".corrupt"
        aside = present[index].with_name(present[index].name + suffix)
        present[index].replace(aside)
        report(f"{problem}\n  -> moved to {aside.name}; collecting episode {index} again")
        missing.append(index)
        moved += 1
    return missing, frames, moved


def describe_foreign(folder, paths):
    """What another implementation's episode files in `folder` hold, in a few lines."""
    infos, bad = [], []
    for path in paths:
        try:
            infos.append(check_episode(path, full=False))
        except EpisodeFileError as error:
            bad.append(str(error))
    keys = sorted({key for info in infos for key in info.keys})
    lines = [f"{folder} holds {len(paths)} episode files that extract.py did not write (e.g. {paths[0].name}; "
             f"no extract.config): {len(infos)} readable, {sum(info.length for info in infos)} frames, "
             f"keys {', '.join(keys) or 'none'}" + (f"; {len(bad)} unreadable, first: {bad[0]}" if bad else ""),
             "vae_train.py, series.py and rnn_train.py train on them as they are. extract.py adds none of its own to "
             "them: to collect rollouts, pass --record_name <another folder> (later stages read that folder "
             "with the same key), or move these files away."]
    return "\n".join(lines)


def check_controller_policy(config):
    """Before any worker starts: the controller file fits the config and its world model is there.
    Returns the SHA-256 of the controller, vision model and MDN-RNN files, one string (each episode
    of the round records it)."""
    from common.files import file_sha256
    from stages.evaluation import load_for_config

    load_for_config(controller_path(config), config, report=print)
    paths = (controller_path(config), model_path(config, config.vision), rnn_path(config))
    for path in paths[1:]:
        if not path.exists():
            raise UserFacingError(f"{path}: missing; the controller policy drives through the trained world model "
                                  f"of --vision {config.vision} (run its vision and memory stages first)")
    return " ".join(file_sha256(path) for path in paths)


def check_same_controller(folder, config, world_model):
    """Refuse to add episodes to a round collected with another controller or world model."""
    for path in sorted(path for path in folder.glob("*episode_*.npz")
                       if episode_index(path, config.extract_round) is not None):
        try:
            recorded = str(load_episode(path, keys=["world_model"])["world_model"])
        except EpisodeFileError:
            continue  # not readable or not ours: find_missing reports it
        if recorded != world_model:
            raise UserFacingError(f"{path} was collected with another controller or world model (the files' SHA-256 "
                                  f"differ); collect into another --extract_round or --record_name")
        return


def batches(missing, config, policy_factory):
    """[(batch of episode indices, the missing ones among them)]: agent-driven policies play fixed
    batches of extract_batch_size episodes (0..b-1, b..2b-1, ...), so a rerun, or a run with more
    episodes, plays the same batches; the others play one episode per task."""
    if not agent_driven(config, policy_factory):
        return [([index], [index]) for index in missing]
    size, missing = config.extract_batch_size, set(missing)
    starts = sorted({index - index % size for index in missing})
    return [(list(range(start, min(start + size, config.num_episodes))),
             sorted(index for index in missing if start <= index < start + size)) for start in starts]


def extract(config, policy_factory=None, policy_name=None):
    """Collect the missing episodes of config.num_episodes (of round extract_round); returns a summary
    dict. Called by pipeline.py.

    policy_factory (a picklable `factory(rng) -> act`) replaces the config's exploration policy;
    policy_name is then recorded in the files.
    """
    folder = record_dir(config)
    started = time.monotonic()
    foreign = foreign_episodes(folder)
    if foreign and not has_own_rounds(folder):  # another implementation's folder: describe it, write nothing
        text = describe_foreign(folder, foreign)
        print(text)
        return {"record_dir": str(folder), "episodes_collected": 0, "foreign_episode_files": len(foreign), "text": text}
    world_model = check_controller_policy(config) if policy_factory is None and config.extract_policy == "controller" \
        else None
    with stage_folder(folder, config, round_script(config), DATA_KEYS) as folder:
        if world_model is not None:
            check_same_controller(folder, config, world_model)
        missing, existing_frames, moved = find_missing(folder, config.num_episodes, config.extract_round,
                                                       config.max_frames, report=tqdm.write)
        round_text = f" of round {config.extract_round}" if config.extract_round else ""
        print(f"{config.num_episodes - len(missing)} of {config.num_episodes} episodes{round_text} already in "
              f"{folder}; collecting {len(missing)} with policy '{policy_name or config.extract_policy}' "
              f"({config.backend} backend, num_workers={config.num_workers or 'all cores'})")
        totals = {"episodes": 0, "frames": 0, "reward": 0.0, "discarded": 0, "coverage": 0.0}
        collecting = time.monotonic()
        if agent_driven(config, policy_factory):  # here: the workers then start TensorFlow quietly (common/parallel.py)
            import common.tensorflow_settings  # noqa: F401  (starts TensorFlow, quietly)
        tasks = [(config, group, policy_factory, policy_name, wanted, world_model)
                 for group, wanted in batches(missing, config, policy_factory)]
        with progress_bar(total=len(missing), desc="extract", unit="episode") as progress:
            for _, episodes in run_tasks(collect_episodes, tasks, config, report=tqdm.write,
                                         name=lambda args: f"episodes {', '.join(map(str, args[4]))}"):
                for index, payload, stats in episodes:
                    write_bytes_atomic(episode_path(folder, index, config.extract_round), payload)
                    totals["episodes"] += 1
                    for key in ("frames", "reward", "discarded", "coverage"):
                        totals[key] += stats[key]
                progress.set_postfix(frames_per_s=f"{totals['frames'] / (time.monotonic() - collecting):.0f}",
                                     mean_reward=f"{totals['reward'] / max(totals['episodes'], 1):.1f}", refresh=False)
                progress.update(len(episodes))
    summary = _summary(folder, config, totals, existing_frames, moved, time.monotonic() - started,
                       time.monotonic() - collecting)
    print(summary["text"])
    return summary


def _summary(folder, config, totals, existing_frames, moved, seconds, collecting_seconds):
    collected = totals["episodes"]

    def mean(key):
        return totals[key] / collected if collected else 0.0

    def in_this_round(path):
        index = episode_index(path, config.extract_round)
        return index is not None and index < config.num_episodes

    beyond = [p for p in folder.glob("*.npz") if not p.name.startswith(".") and not in_this_round(p)]
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
    first, last = (episode_path(folder, index, config.extract_round).name for index in (0, config.num_episodes - 1))
    lines.append(f"{folder} holds {first}..{last} ({summary['frames_total']} frames)"
                 + (f" and {len(beyond)} other episode files, which later stages read too" if beyond else ""))
    summary["text"] = "\n".join(lines)
    return summary
