"""Frame processing and the CarRacing environment in both simulators (gymnasium's and envpool's): shapes,
the dashboard cut, seeding, full episodes, the ending rules, and the tile counts read off the rewards."""

import importlib.util
import json
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from common.errors import UserFacingError
from conftest import RUN_RECORDS
from env import (
    STEP_REWARD,
    CarRacingFrames,
    EnvpoolCarRacing,
    driving_state,
    make_env,
    process_frame,
    tile_counts,
    tiles_visited,
    track_tiles,
)

ROOT = Path(__file__).resolve().parents[1]

# envpool is in requirements.txt; its cases are skipped only where it has no wheel (not Linux, Python < 3.11)
NEEDS_ENVPOOL = pytest.mark.skipif(importlib.util.find_spec("envpool") is None, reason="envpool is not installed")
BACKENDS = ["gymnasium", pytest.param("envpool", marks=NEEDS_ENVPOOL)]


@pytest.fixture(params=BACKENDS)
def backend_config(request, make_config):
    """tiny_config's short episodes in each simulator."""
    return make_config("--max_frames", 30, "--env_backend", request.param)


def test_process_frame_cuts_the_dashboard_and_resizes():
    frame = np.zeros((96, 96, 3), dtype=np.uint8)
    frame[84:] = 255  # dashboard rows: must not reach the processed frame
    processed = process_frame(frame)
    assert processed.shape == (64, 64, 3) and processed.dtype == np.uint8
    assert processed.max() == 0


def test_process_frame_keeps_colours_and_the_top_to_bottom_order():
    colour = np.zeros((96, 96, 3), dtype=np.uint8)
    colour[:84] = (107, 204, 102)  # the grass
    np.testing.assert_array_equal(process_frame(colour), np.broadcast_to([107, 204, 102], (64, 64, 3)))
    # a vertical gradient keeps its order: row 0 of the output comes from the top of the frame
    gradient = np.repeat(np.linspace(0, 255, 96, dtype=np.uint8)[:, None, None], 96, axis=1).repeat(3, axis=2)
    column = process_frame(gradient)[:, 0, 0].astype(int)
    assert np.all(np.diff(column) >= 0) and column[-1] <= 84 * 255 / 95 + 2


def test_real_env_gives_processed_frames_and_rewards(backend_config):
    env = make_env(backend_config, seed=3)
    frame, _ = env.reset()
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
    assert env.observation_space.contains(frame)
    frame, reward, terminated, truncated, _ = env.step(np.array([0.0, 1.0, 0.0], dtype=np.float32))
    assert frame.shape == (64, 64, 3) and np.isfinite(reward)
    assert track_tiles(env) > 100 and 0 <= tiles_visited(env) <= track_tiles(env)
    env.close()


def test_episodes_end_at_max_frames(backend_config):
    env = make_env(backend_config, seed=0)
    env.reset()
    steps, done = 0, False
    while not done:
        _, _, terminated, truncated, _ = env.step(np.array([0.0, 0.0, 0.0], dtype=np.float32))
        steps, done = steps + 1, terminated or truncated
    assert steps == backend_config.max_frames and truncated and not terminated
    env.close()


def test_fixed_track_tiles_draws_tracks_of_that_length_from_the_seed(make_config, monkeypatch):
    import env as env_module

    plain = make_env(make_config(), seed=5)
    plain.reset()
    first = track_tiles(plain)
    same = make_env(make_config("--fixed_track_tiles", first), seed=5)  # the seed's own track fits: kept
    np.testing.assert_array_equal(same.reset()[0], make_env(make_config(), seed=5).reset()[0])
    target = 289 if first != 289 else 290
    fixed = make_env(make_config("--fixed_track_tiles", target), seed=5)
    frame = fixed.reset()[0]
    assert track_tiles(fixed) == target
    again = make_env(make_config("--fixed_track_tiles", target), seed=5)
    np.testing.assert_array_equal(again.reset()[0], frame)  # the same seed draws the same fitting track
    fixed.reset()
    assert track_tiles(fixed) == target  # and so does every later reset
    monkeypatch.setattr(env_module, "MAX_TRACK_DRAWS", 3)
    with pytest.raises(UserFacingError, match="fixed_track_tiles=10: no such track in 3 draws"):
        make_env(make_config("--fixed_track_tiles", 10), seed=5).reset()
    with pytest.raises(UserFacingError, match="fixed_track_tiles needs env_backend=gymnasium"):
        make_env(make_config("--fixed_track_tiles", 289, "--env_backend", "envpool"), seed=5)


def test_same_seed_same_track_and_frames(backend_config):
    def first_frames(seed):
        env = make_env(backend_config, seed=seed)
        frames = [env.reset()[0]]
        for _ in range(5):
            frames.append(env.step(np.array([0.3, 0.5, 0.0], dtype=np.float32))[0])
        tiles = track_tiles(env)
        env.close()
        return np.stack(frames), tiles

    frames_a, tiles_a = first_frames(11)
    frames_b, tiles_b = first_frames(11)
    frames_c, _ = first_frames(12)
    np.testing.assert_array_equal(frames_a, frames_b)
    assert tiles_a == tiles_b
    assert not np.array_equal(frames_a, frames_c)


class _LapFinishingEnv(gym.Env):
    """Stands in for CarRacing at the moment a lap is finished, or the car leaves the playfield."""
    observation_space = gym.spaces.Box(0, 255, (96, 96, 3), np.uint8)
    action_space = gym.spaces.Box(-1, 1, (3,), np.float32)

    def __init__(self, lap_finished):
        self.lap_finished = lap_finished

    def reset(self, *, seed=None, options=None):
        return np.zeros((96, 96, 3), np.uint8), {}

    def step(self, action):
        return np.zeros((96, 96, 3), np.uint8), 1.0, True, False, {"lap_finished": self.lap_finished}


@pytest.mark.parametrize("full_episode, lap_finished, ends", [
    (False, True, True), (True, True, False), (True, False, True), (False, False, True)])
def test_full_episode_ignores_only_lap_completion(full_episode, lap_finished, ends):
    env = CarRacingFrames(_LapFinishingEnv(lap_finished), full_episode=full_episode)
    env.reset()
    assert env.step(np.zeros(3, np.float32))[2] is ends


def test_tile_counts_from_rewards_match_a_closed_form():
    one_tile = 1000.0 / 293
    assert tile_counts([]) == (0, 0)
    assert tile_counts([2 * one_tile, one_tile, one_tile, 3 * one_tile]) == (293, 7)


def test_tile_counts_read_off_the_rewards_are_gymnasiums_own(make_config):
    """On the judge, where the track is known, the counts envpool's adapter reads off the rewards agree."""
    env = make_env(make_config("--max_frames", 150), seed=5)
    env.reset()
    rewards, done = [], False
    while not done:
        _, reward, terminated, truncated, _ = env.step(np.array([0.0, 0.6, 0.0], np.float32))
        rewards.append(reward)
        done = terminated or truncated
    tile_rewards = [reward - STEP_REWARD for reward in rewards if reward - STEP_REWARD > 1e-3]
    assert len(tile_rewards) > 5
    assert tile_counts(tile_rewards) == (track_tiles(env), tiles_visited(env))


@NEEDS_ENVPOOL
def test_envpool_reports_tiles_from_rewards_and_no_car_state(make_config):
    env = make_env(make_config("--max_frames", 60, "--env_backend", "envpool"), seed=2)
    assert isinstance(env, EnvpoolCarRacing)
    env.reset()
    rewards = [env.step(np.array([0.0, 0.8, 0.0], np.float32))[1] for _ in range(60)]
    tiles, visited = track_tiles(env), tiles_visited(env)
    assert 150 < tiles < 400 and visited > 3  # CarRacing's tracks have about 230-320 tiles
    np.testing.assert_allclose(sum(rewards), visited * 1000.0 / tiles + 60 * STEP_REWARD, atol=0.05)
    assert driving_state(env) is None
    # out-of-box actions are clipped (the C++ car takes none), not refused
    assert np.isfinite(env.step(np.array([3.0, 2.0, -1.0], np.float32))[1])


@NEEDS_ENVPOOL
def test_envpool_episode_files_leave_out_speed_and_on_road_and_a_state_reading_policy_is_refused(make_config):
    from stages.policies import pursuit_driver
    from stages.rollouts import run_episode

    config = make_config("--max_frames", 40, "--min_frames", 5, "--env_backend", "envpool")
    episode = run_episode(config, 7)
    assert len(episode["obs"]) == 40 and episode["obs"].dtype == np.uint8
    assert "speed" not in episode and "on_road" not in episode and episode["track_tiles"] > 150
    with pytest.raises(UserFacingError, match="env_backend=gymnasium"):
        run_episode(config, 7, pursuit_driver)


@NEEDS_ENVPOOL
def test_both_simulators_drive_alike_under_the_same_steady_action(make_config):
    """The fast half of bench/env_equivalence.py: on three seeds each (different tracks), the same steady
    drive collects tiles at the same rate, zooms in over the first 50 steps and shows the same colours."""
    measured = {}
    for backend in ("gymnasium", "envpool"):
        config = make_config("--max_frames", 80, "--env_backend", backend)
        scores, frames, changes = [], [], []
        for seed in (0, 1, 2):
            env = make_env(config, seed=seed)
            episode = [env.reset()[0]]
            rewards = []
            for _ in range(80):
                frame, reward, _, _, _ = env.step(np.array([0.0, 0.3, 0.0], np.float32))
                episode.append(frame)
                rewards.append(reward)
            env.close()
            scores.append(sum(rewards))
            frames.append(np.stack(episode))
            changes.append(np.abs(np.diff(np.stack(episode[:50]).astype(np.int16), axis=0)).mean())
        measured[backend] = (np.mean(scores), np.concatenate(frames).mean(axis=(0, 1, 2)), np.mean(changes))
    (gym_score, gym_colour, gym_zoom), (pool_score, pool_colour, pool_zoom) = measured.values()
    assert abs(gym_score - pool_score) < 6.0  # ~14 tiles of ~3.4 points each in 80 steps
    np.testing.assert_allclose(pool_colour, gym_colour, atol=4.0)  # envpool's palette is 2 levels lighter
    assert gym_zoom > 1.0 and abs(pool_zoom - gym_zoom) < 0.3 * gym_zoom


def test_the_published_simulator_tables_are_regenerated_from_their_record():
    """docs/results.md's tables of the two simulators are what `env_equivalence.py --from_record` prints from
    its record in docs/runs/ (a figure there cannot drift from its record); the record is the full bench."""
    sys.path.insert(0, str(ROOT / "bench"))
    import env_equivalence

    record = json.loads((RUN_RECORDS / "env_equivalence" / "record.json").read_text())
    assert record["episodes"] == 30 and set(record["distributions"]) == {"steady", "brownian", "white"}
    assert env_equivalence.tables(record) in (ROOT / "docs" / "results.md").read_text()



def test_the_published_simulator_speed_table_is_regenerated_from_its_record():
    """docs/results.md's steps/s table of the two simulators and the full agent is what
    `env_bench.py --from_record` prints from its record in docs/runs/; the record holds every measure."""
    sys.path.insert(0, str(ROOT / "bench"))
    import env_bench

    record = json.loads((RUN_RECORDS / "env_bench" / "record.json").read_text())
    assert all(len(values) == record["repeats"] for values in record["rates"].values())
    assert env_bench.table(record) in (ROOT / "docs" / "results.md").read_text()


# The controllers of docs/results.md's decisive check, as `bench/simulator_scores.py` was given them
SIMULATOR_CHECK = [
    ("trained in envpool (this world model)", "laptop_vae_envpool/controller_envpool/best.json"),
    ("trained in envpool, CMA-ES seed 1", "laptop_vae_envpool/controller_envpool_seed1/best.json"),
    ("trained in gymnasium on the 2026-12-04 Intel world model (laptop_vae_kl4)",
     "laptop_vae_envpool/controller_kl4_intel/best.json"),
]


# The same on the 2026-12-04 Intel world model, rebuilt bit for bit on 2026-12-07: the controller CMA-ES
# trained in gymnasium, and three CMA-ES runs in envpool (its --group: the runs of one method)
SIMULATOR_CHECK_INTEL = [
    ("trained in gymnasium (laptop_vae_kl4)", "laptop_vae_kl4/best.json"),
    ("trained in envpool, CMA-ES seed 0", "laptop_vae_kl4/controller_envpool/best.json"),
    ("trained in envpool, CMA-ES seed 1", "laptop_vae_kl4/controller_envpool_seed1/best.json"),
    ("trained in envpool, CMA-ES seed 2", "laptop_vae_kl4/controller_envpool_seed2/best.json"),
]


@pytest.mark.parametrize("check, groups", [(SIMULATOR_CHECK, ()), (SIMULATOR_CHECK_INTEL, ("trained in envpool",))])
def test_the_published_decisive_checks_are_regenerated_from_their_records(check, groups):
    """docs/results.md's tables of the same controllers scored in both simulators are what
    `bench/simulator_scores.py` prints from the evaluations in docs/runs/ (100 episodes each)."""
    sys.path.insert(0, str(ROOT / "bench"))
    import simulator_scores

    controllers = [(label, RUN_RECORDS / path) for label, path in check]
    for _, path in controllers:
        for backend in ("gymnasium", "envpool"):
            assert len(simulator_scores.evaluation_scores(path, backend)[1]) == 100
    assert simulator_scores.table(controllers, groups) in (ROOT / "docs" / "results.md").read_text()


def test_the_intel_world_model_was_rebuilt_bit_for_bit():
    """The claim that the envpool runs of laptop_vae_kl4/ share the gymnasium run's world model: V and M
    retrained on 2026-12-07 measured the same to the last digit, and its controller played the first 10
    evaluation episodes to the same scores."""
    rebuilt = RUN_RECORDS / "laptop_vae_kl4" / "rebuilt_2026-12-07"
    for name in ("vision_metrics.json", "memory_metrics.json"):
        then, now = (json.loads(path.read_text()) for path in (RUN_RECORDS / "laptop_vae_kl4" / name, rebuilt / name))
        assert {key: now[key] for key in now if key in then} == {key: then[key] for key in now if key in then}
    first_ten = (RUN_RECORDS / "laptop_vae_kl4" / "best_evaluation.csv").read_text().splitlines()[:11]
    assert (rebuilt / "best_evaluation_10_episodes.csv").read_text().splitlines() == first_ten
