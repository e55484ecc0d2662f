"""Frame processing and the CarRacing environment: shapes, the dashboard cut, seeding, full episodes."""

import gymnasium as gym
import numpy as np
import pytest

from env import CarRacingFrames, make_env, process_frame, tiles_visited, track_tiles


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


def test_real_env_gives_processed_frames_and_rewards(tiny_config):
    env = make_env(tiny_config, seed=3)
    frame, _ = env.reset()
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
    assert env.observation_space.contains(frame)
    frame, reward, terminated, truncated, _ = env.step(np.array([0.0, 1.0, 0.0], dtype=np.float32))
    assert frame.shape == (64, 64, 3) and np.isfinite(reward)
    assert track_tiles(env) > 100 and 0 <= tiles_visited(env) <= track_tiles(env)
    env.close()


def test_episodes_end_at_max_frames(tiny_config):
    env = make_env(tiny_config, seed=0)
    env.reset()
    steps, done = 0, False
    while not done:
        _, _, terminated, truncated, _ = env.step(np.array([0.0, 0.0, 0.0], dtype=np.float32))
        steps, done = steps + 1, terminated or truncated
    assert steps == tiny_config.max_frames and truncated
    env.close()


def test_same_seed_same_track_and_frames(tiny_config):
    def first_frames(seed):
        env = make_env(tiny_config, seed=seed)
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
