"""Exploration policies and the controller's action mapping."""

import numpy as np
import pytest

from controller import carracing_action
from env import ACTION_HIGH, ACTION_LOW
from stages.policies import brownian_policy, make_policy_factory, random_linear_policy, white_policy


def test_carracing_action_matches_the_originals_mapping():
    output = np.random.default_rng(0).uniform(-1, 1, size=(50, 3))
    expected = np.stack([output[:, 0], (output[:, 1] + 1) / 2, np.maximum(output[:, 2], 0)], axis=1)
    np.testing.assert_allclose(carracing_action(output), expected, rtol=1e-6)
    np.testing.assert_allclose(carracing_action([-1.0, -1.0, -1.0]), [-1.0, 0.0, 0.0])
    np.testing.assert_allclose(carracing_action([1.0, 1.0, 1.0]), [1.0, 1.0, 1.0])


def frames(count, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, 64, 64, 3), dtype=np.uint8)


@pytest.mark.parametrize("factory", [lambda rng: brownian_policy(rng, dt=0.02), white_policy,
                                     lambda rng: random_linear_policy(rng, max_stdev=0.05)])
def test_actions_are_in_bounds_and_reproducible(factory):
    def actions(seed):
        act = factory(np.random.default_rng(seed))
        return np.stack([act(frame) for frame in frames(200)])

    first, again, other = actions(1), actions(1), actions(2)
    assert first.shape == (200, 3) and first.dtype == np.float32
    assert np.all(first >= ACTION_LOW) and np.all(first <= ACTION_HIGH)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_brownian_steps_are_small_and_white_steps_are_not():
    brownian = brownian_policy(np.random.default_rng(0), dt=0.02)
    walk = np.stack([brownian(frame) for frame in frames(500)])
    steps = np.abs(np.diff(walk, axis=0))
    assert steps.max() < 5 * np.sqrt(0.02)  # |N(0,1)| > 5 has probability 6e-7 per draw
    white = white_policy(np.random.default_rng(0))
    jumps = np.abs(np.diff(np.stack([white(frame) for frame in frames(500)]), axis=0))
    assert jumps.mean() > 3 * steps.mean()


def test_linear_policy_reacts_to_the_frame():
    act = random_linear_policy(np.random.default_rng(3), max_stdev=0.05)
    dark, bright = np.zeros((64, 64, 3), np.uint8), np.full((64, 64, 3), 255, np.uint8)
    assert not np.allclose(act(dark), act(bright))
    np.testing.assert_array_equal(act(dark), act(dark))  # memoryless: same frame, same action


def test_config_chooses_the_policy(make_config):
    rng = np.random.default_rng(0)
    for name in ("brownian", "white", "linear"):
        act = make_policy_factory(make_config("--extract_policy", name))(rng)
        assert act(frames(1)[0]).shape == (3,)
