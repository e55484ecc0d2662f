"""extract.py: a real 2-worker collection, resume after deletion and corruption, regeneration."""

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import stages.rollouts as extract_module
from common.config import ConfigError
from common.episodes import check_episode, load_episode
from common.files import FolderLockedError, folder_lock
from common.layout import record_dir
from conftest import SMOKE_CONFIG
from parallel_tasks import constant_action_policy
from stages.rollouts import EPISODE_NAME, collect_episodes, episode_seed, extract, regenerate_episode

ROOT = Path(__file__).resolve().parents[1]


def episode_files(config):
    return sorted(p for p in record_dir(config).glob("*.npz") if EPISODE_NAME.fullmatch(p.name))


def test_two_worker_extract_writes_valid_episodes_and_resumes(tiny_config):
    summary = extract(tiny_config)
    files = episode_files(tiny_config)
    assert [f.name for f in files] == [f"episode_{i:06d}.npz" for i in range(4)]
    for path in files:
        episode = load_episode(path)
        assert episode["obs"].shape == (30, 64, 64, 3) and episode["obs"].dtype == np.uint8
        assert episode["action"].dtype == np.float16 and episode["done"][-1] and not episode["done"][:-1].any()
        assert str(episode["policy"]) == tiny_config.extract_policy == "original"
        assert episode["speed"].shape == (30,) and episode["on_road"].dtype == bool and episode["on_road"][0]
    assert summary["episodes_collected"] == 4 and summary["frames_collected"] == 120
    assert (record_dir(tiny_config) / "extract.config").exists()

    # A second run writes nothing.
    stamps = {path: path.stat().st_mtime_ns for path in files}
    assert extract(tiny_config)["episodes_collected"] == 0
    assert {path: path.stat().st_mtime_ns for path in files} == stamps

    # Delete one, corrupt another: the rerun restores both and keeps the corrupt file aside.
    original = files[2].read_bytes()
    files[1].unlink()
    damaged = bytearray(original)
    damaged[len(damaged) // 2: len(damaged) // 2 + 64] = bytes(64)
    files[2].write_bytes(bytes(damaged))
    assert extract(tiny_config)["episodes_collected"] == 2
    for path in episode_files(tiny_config):
        check_episode(path, full=True)
    assert files[2].read_bytes() == original, "episodes are regenerated from their seeds exactly"
    assert files[2].with_name(files[2].name + ".corrupt").exists()

    # Another implementation's episode under one of ours names (obs and action only, longer than max_frames):
    # not taken for ours, but set aside and collected again.
    np.savez_compressed(files[3], obs=np.zeros((31, 64, 64, 3), np.uint8), action=np.zeros((31, 3), np.float16))
    assert extract(tiny_config)["episodes_collected"] == 1
    assert {"seed", "settings"} <= set(check_episode(files[3], full=True).keys)
    assert files[3].with_name(files[3].name + ".foreign").exists()


def test_an_episode_file_regenerates_from_its_own_seed_and_settings(make_config):
    config = make_config("--num_episodes", 1, "--max_frames", 25, "--min_frames", 5, "--num_workers", 1,
                         "--extract_policy", "brownian", "--seed", 7)
    extract(config)
    [path] = episode_files(config)
    stored = load_episode(path)
    regenerated = regenerate_episode(path)  # from the file alone: no config given
    np.testing.assert_array_equal(regenerated["obs"], stored["obs"])
    np.testing.assert_array_equal(regenerated["action"].astype(np.float16), stored["action"])
    assert int(stored["seed"]) == episode_seed(7, 0, 0)


def test_seeds_differ_across_episodes_and_attempts():
    seeds = {episode_seed(0, index, attempt) for index in range(50) for attempt in range(3)}
    assert len(seeds) == 150 and max(seeds) > 2**32  # 64-bit: no birthday collisions at paper scale


def test_original_policy_episodes_regenerate_from_their_batch(make_config):
    """Agent-driven episodes are played in lockstep batches; a file names its batch's seeds."""
    config = make_config("--num_episodes", 3, "--max_frames", 25, "--min_frames", 5, "--num_workers", 1)
    extract(config)
    paths = episode_files(config)
    stored = load_episode(paths[1])
    assert len(stored["batch_seeds"]) == 3 and int(stored["seed"]) in stored["batch_seeds"].tolist()
    regenerated = regenerate_episode(paths[1])
    np.testing.assert_array_equal(regenerated["obs"], stored["obs"])
    np.testing.assert_array_equal(regenerated["action"].astype(np.float16), stored["action"])
    np.testing.assert_array_equal(regenerated["speed"].astype(np.float16), stored["speed"])


@pytest.mark.parametrize("policy", ["white", "original"])
def test_short_episodes_are_discarded_and_replaced(tiny_config, make_config, monkeypatch, policy):
    config = make_config("--max_frames", 30, "--min_frames", 5, "--extract_policy", policy)
    real_play_rollouts = extract_module.play_rollouts
    short_seed = episode_seed(config.seed, 3, 0)

    def first_attempt_short(config, seeds, policy_factory=None):
        episodes = real_play_rollouts(config, seeds, policy_factory)
        return [{**episode, **{key: episode[key][:2] for key in ("obs", "action", "reward", "done")}}
                if seed == short_seed else episode for seed, episode in zip(seeds, episodes, strict=True)]

    monkeypatch.setattr(extract_module, "play_rollouts", first_attempt_short)
    [(index_2, _, stats_2), (index_3, payload, stats_3)] = collect_episodes(config, [2, 3])
    stored = np.load(io.BytesIO(payload))
    assert (index_2, index_3) == (2, 3) and stats_2["discarded"] == 0 and stats_3["discarded"] == 1
    assert len(stored["obs"]) == config.max_frames
    assert int(stored["seed"]) == episode_seed(config.seed, 3, 1)


def test_a_trained_policy_can_be_plugged_in(tiny_config):
    extract(tiny_config, policy_factory=constant_action_policy, policy_name="full-gas")
    for path in episode_files(tiny_config):
        episode = load_episode(path)
        assert str(episode["policy"]) == "full-gas"
        np.testing.assert_array_equal(episode["action"], np.tile([0.0, 1.0, 0.0], (30, 1)))


def test_episodes_beyond_num_episodes_are_reported(tiny_config, make_config):
    extract(tiny_config)
    fewer = make_config("--num_episodes", 2, "--max_frames", 30, "--min_frames", 5, "--num_workers", 2)
    summary = extract(fewer)
    assert summary["episodes_collected"] == 0 and summary["other_episode_files"] == 2


def test_a_second_writer_is_refused(tiny_config):
    with folder_lock(record_dir(tiny_config), "another extract.py"):
        with pytest.raises(FolderLockedError, match="another extract.py is writing"):
            extract(tiny_config)


def test_a_folder_never_mixes_two_settings(tiny_config, make_config):
    extract(tiny_config)
    changed = make_config("--num_episodes", 4, "--max_frames", 31, "--min_frames", 5, "--num_workers", 2)
    with pytest.raises(ConfigError, match="max_frames=30 there, 31 now"):
        extract(changed)


def test_a_killed_run_leaves_only_complete_files_and_a_rerun_finishes(make_config, tmp_path):
    settings = ["--num_episodes", "6", "--max_frames", "200", "--min_frames", "5", "--num_workers", "2",
                "--extract_policy", "white"]  # the kill mechanics; workers without TensorFlow start fast
    config = make_config(*settings)
    command = [sys.executable, str(ROOT / "WorldModels" / "extract.py"), "-c", str(SMOKE_CONFIG),
               "--results_dir", config.results_dir, *settings]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while not episode_files(config) and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)  # kill -9 the driver and its workers
    process.wait()
    written = episode_files(config)
    assert 0 < len(written) < 6, "the kill should land mid-run"
    for path in written:
        check_episode(path, full=True)
    stale = record_dir(config) / ".episode_000005.12345.tmp.npz"  # as a kill during a write leaves it
    stale.write_bytes(b"half an episode")
    assert extract(config)["episodes_collected"] == 6 - len(written)
    assert not stale.exists()
    assert len(episode_files(config)) == 6
    assert not list(record_dir(config).glob(".*.tmp*"))


