"""The CarRacing environment as the world model sees it: 64x64 uint8 frames, headless, seeded."""

import os

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # keep pygame's banner out of logs

import gymnasium as gym
import numpy as np
from PIL import Image

FRAME_SIZE = 64
DASHBOARD_ROW = 84  # rows 84..95 of the 96x96 render hold the dashboard, which is cut off
ACTION_LOW = np.array([-1.0, 0.0, 0.0], dtype=np.float32)  # steer, gas, brake
ACTION_HIGH = np.array([1.0, 1.0, 1.0], dtype=np.float32)


def process_frame(frame):
    """96x96x3 uint8 render -> 64x64x3 uint8: rows 0..83, resized bilinearly (as the original)."""
    image = Image.fromarray(frame[:DASHBOARD_ROW])
    return np.asarray(image.resize((FRAME_SIZE, FRAME_SIZE), Image.Resampling.BILINEAR))


class CarRacingFrames(gym.Wrapper):
    """CarRacing returning processed frames.

    With `full_episode`, finishing a lap does not end the episode (the car drives on until
    max_frames), as the original's data collection did; leaving the playfield still ends it,
    because every later step would repeat the -100 penalty. The first reset without a seed uses
    the seed given here, so a new environment is reproducible without knowing gymnasium's API.
    """

    def __init__(self, env, full_episode=False, seed=None):
        super().__init__(env)
        self.observation_space = gym.spaces.Box(0, 255, (FRAME_SIZE, FRAME_SIZE, 3), np.uint8)
        self.full_episode = full_episode
        self._first_seed = seed

    def reset(self, *, seed=None, options=None):
        if seed is None:
            seed, self._first_seed = self._first_seed, None
        frame, info = self.env.reset(seed=seed, options=options)
        return process_frame(frame), info

    def step(self, action):
        frame, reward, terminated, truncated, info = self.env.step(action)
        if self.full_episode and info.get("lap_finished"):
            terminated = False
        return process_frame(frame), reward, terminated, truncated, info


def make_env(config, seed=None, full_episode=False):
    """CarRacing (continuous actions) with 64x64 frames and episodes capped at config.max_frames.

    `seed` makes the first episode (track and action_space samples) reproducible; later resets
    without a seed continue the same random stream. Needs no display.
    """
    env = gym.make(config.env_name, continuous=True, max_episode_steps=config.max_frames)
    env = CarRacingFrames(env, full_episode=full_episode, seed=seed)
    if seed is not None:
        env.action_space.seed(seed)
    return env


def track_tiles(env):
    """Number of tiles of the current track (the `N` of an episode file)."""
    return len(env.unwrapped.track)


def tiles_visited(env):
    """Number of distinct track tiles the car has driven over in the current episode."""
    return env.unwrapped.tile_visited_count
