"""Exploration policies for collecting rollouts.

A policy factory takes a numpy Generator (seeded per episode) and returns `act(frame) -> action`
for one episode, where frame is the processed 64x64x3 uint8 observation and action is CarRacing's
float32 (steer, gas, brake). A trained agent plugs into extract.py the same way: any callable
`factory(rng) -> act` will do.
"""

import functools

import numpy as np

from controller import carracing_action
from env import ACTION_HIGH, ACTION_LOW, FRAME_SIZE


def brownian_policy(rng, dt):
    """Actions follow a clipped random walk: a_{t+1} = clip(a_t + sqrt(dt) * N(0, I)) (the PyTorch port)."""
    action = rng.uniform(ACTION_LOW, ACTION_HIGH).astype(np.float32)

    def act(frame):
        nonlocal action
        current = action
        action = np.clip(action + np.sqrt(dt) * rng.standard_normal(3), ACTION_LOW, ACTION_HIGH).astype(np.float32)
        return current

    return act


def white_policy(rng):
    """Independent uniform actions at every step."""
    def act(frame):
        return rng.uniform(ACTION_LOW, ACTION_HIGH).astype(np.float32)

    return act


def random_linear_policy(rng, max_stdev):
    """A random linear controller over the frame (the original's idea): tanh(W x + b), x = frame / 255.

    Weights ~ N(0, s^2) with s ~ U(0, max_stdev) drawn per episode, so episodes range from nearly
    constant actions to actions that react strongly to the picture.
    """
    stdev = rng.uniform(0.0, max_stdev)
    weight = rng.normal(0.0, stdev, size=(FRAME_SIZE * FRAME_SIZE * 3, 3)).astype(np.float32)
    bias = rng.normal(0.0, stdev, size=3).astype(np.float32)

    def act(frame):
        features = frame.reshape(-1).astype(np.float32) / 255.0
        return carracing_action(np.tanh(features @ weight + bias))

    return act


def make_policy_factory(config):
    """The exploration policy chosen by config.extract_policy, as `factory(rng) -> act`."""
    factories = {
        "brownian": functools.partial(brownian_policy, dt=config.extract_brownian_dt),
        "white": white_policy,
        "linear": functools.partial(random_linear_policy, max_stdev=config.extract_linear_stdev),
    }
    return factories[config.extract_policy]
