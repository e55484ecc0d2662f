"""The MDN-RNN's math and model: NLL against numpy, sampling, stepping, masking, the baseline, windows."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from common.data import sequence_dataset, validation_windows
from rnn.rnn import (
    MDNRNN,
    DecayedLearningRate,
    dropout_masks,
    masked_mean,
    mixture_mean,
    mixture_nll,
    sample_mixture,
    split_mixture,
    step_function,
    weighted_done_loss,
)
from stages.action_usage import shuffled_actions_losses, shuffled_in_time
from stages.memory import baseline_nll, baseline_variance

rng = np.random.default_rng(0)


def random_mixture(shape=(4, 3), mixtures=5):
    logits = rng.normal(size=(*shape, mixtures))
    log_weights = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return log_weights, rng.normal(size=(*shape, mixtures)), rng.normal(scale=0.5, size=(*shape, mixtures))


def test_mixture_nll_against_numpy():
    log_weights, means, log_sigmas = random_mixture()
    target = rng.normal(size=(4, 3))
    sigmas = np.exp(log_sigmas)
    densities = np.exp(-0.5 * ((target[..., None] - means) / sigmas) ** 2) / (sigmas * np.sqrt(2 * np.pi))
    expected = -np.log(np.sum(np.exp(log_weights) * densities, axis=-1))
    np.testing.assert_allclose(mixture_nll(log_weights, means, log_sigmas, target), expected, rtol=1e-6)


def test_split_mixture_normalises_the_weights():
    output = tf.constant(rng.normal(size=(2, 7, 3 * 5 * 3)), tf.float32)
    log_weights, means, log_sigmas = split_mixture(output, z_size=3, num_mixture=5)
    assert log_weights.shape == means.shape == log_sigmas.shape == (2, 7, 3, 5)
    np.testing.assert_allclose(tf.reduce_sum(tf.exp(log_weights), axis=-1), np.ones((2, 7, 3)), rtol=1e-5)
    np.testing.assert_allclose(mixture_mean(log_weights, means),
                               np.sum(np.exp(log_weights.numpy()) * means.numpy(), axis=-1), rtol=1e-5)


def test_sampling_at_zero_temperature_returns_the_most_likely_mean():
    log_weights, means, log_sigmas = random_mixture((6, 4))
    expected = np.take_along_axis(means, np.argmax(log_weights, -1)[..., None], -1)[..., 0]
    for temperature in (0.0, 1e-9):
        np.testing.assert_allclose(sample_mixture(log_weights, means, log_sigmas, temperature, rng), expected)


def test_sampling_follows_the_mixture_and_the_temperature():
    log_weights = np.log(np.array([[0.2, 0.8]]))
    means, log_sigmas = np.array([[-5.0, 5.0]]), np.log(np.array([[0.5, 0.5]]))
    draws = np.array([sample_mixture(log_weights, means, log_sigmas, 1.0, rng)[0] for _ in range(4000)])
    assert np.mean(draws > 0) == pytest.approx(0.8, abs=0.03)
    assert np.std(draws[draws > 0]) == pytest.approx(0.5, rel=0.1)
    hot = np.array([sample_mixture(log_weights, means, log_sigmas, 2.0, rng)[0] for _ in range(4000)])
    # weights softmax(log w / 2) = (1/3, 2/3); variances scaled by tau = 2
    assert np.mean(hot > 0) == pytest.approx(2 / 3, abs=0.03)
    assert np.std(hot[hot > 0]) == pytest.approx(0.5 * np.sqrt(2), rel=0.1)


def test_masked_losses_and_the_done_weight():
    values, mask = rng.normal(size=(3, 5)), rng.uniform(size=(3, 5)) > 0.4
    assert float(masked_mean(tf.constant(values), mask)) == pytest.approx(values[mask].mean(), rel=1e-6)
    per_z = rng.normal(size=(3, 5, 2))
    assert float(masked_mean(tf.constant(per_z), mask)) == pytest.approx(per_z[mask].mean(), rel=1e-6)
    done, logits = np.array([[0.0, 1.0, 0.0]]), np.array([[0.3, -0.2, 1.5]], np.float32)
    sigmoid = 1 / (1 + np.exp(-logits))
    expected = -(done * np.log(sigmoid) + (1 - done) * np.log(1 - sigmoid)) * np.where(done == 1, 10.0, 1.0)
    np.testing.assert_allclose(weighted_done_loss(done, logits, 10.0), expected, rtol=1e-5)


def test_decayed_learning_rate_is_the_originals():
    schedule = DecayedLearningRate(0.001, 0.99, 0.00001)
    for step in (0, 10, 1000):
        assert float(schedule(step)) == pytest.approx((0.001 - 0.00001) * 0.99**step + 0.00001, rel=1e-5)
    assert DecayedLearningRate(**schedule.get_config()).get_config() == schedule.get_config()


def small_rnn(**settings):
    model = MDNRNN(z_size=4, rnn_size=8, num_mixture=3, seed=0, **settings)
    model.build()
    return model


def test_stepping_one_step_at_a_time_equals_the_whole_sequence():
    model = small_rnn(predict_reward=True, predict_done=True)
    z, action = rng.normal(size=(2, 6, 4)).astype(np.float32), rng.normal(size=(2, 6, 3)).astype(np.float32)
    whole = model([z, action])
    state = model.initial_state(2)
    for t in range(6):
        outputs = model.step(z[:, t], action[:, t], state)
        for key in ("log_weights", "means", "log_sigmas", "reward", "done_logit"):
            np.testing.assert_allclose(outputs[key], whole[key][:, t], rtol=1e-5, atol=1e-6)
        state = outputs["state"]
    for mine, theirs in zip(state, whole["state"], strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)


def test_dropout_masks_zero_a_share_and_keep_the_expected_value():
    uniform_z, uniform_h = rng.uniform(size=(400, 32)), rng.uniform(size=(400, 256))
    z_mask, h_mask = dropout_masks(uniform_z, uniform_h, 0.1)
    assert z_mask.shape == (400, 32) and h_mask.shape == (400, 256) and z_mask.dtype == np.float32
    np.testing.assert_array_equal(z_mask, np.where(uniform_z < 0.1, 0.0, 1 / 0.9).astype(np.float32))
    assert set(np.unique(h_mask)) == {np.float32(0.0), np.float32(1 / 0.9)}
    assert np.mean(h_mask == 0) == pytest.approx(0.1, abs=0.01) and np.mean(h_mask) == pytest.approx(1.0, abs=0.02)
    assert (dropout_masks(uniform_z, uniform_h, 0.0)[1] == 1.0).all()


def test_dropout_masks_the_latents_and_h_never_the_actions_with_one_mask_a_sequence():
    """A masked sequence equals stepping with z * z_mask and h * h_mask before every recurrent product,
    the same masks at every step; the compiled dream step does the same; without masks nothing changes."""
    model = small_rnn(predict_reward=True)
    z, action = rng.normal(size=(2, 6, 4)).astype(np.float32), rng.normal(size=(2, 6, 3)).astype(np.float32)
    masks = dropout_masks(rng.uniform(size=(2, 4)), rng.uniform(size=(2, 8)), 0.5)
    whole = model([z, action], masks=masks)
    state, compiled = model.initial_state(2), step_function(model, masked=True)
    h, c = (np.zeros((2, 8), np.float32) for _ in range(2))
    for t in range(6):
        x = np.concatenate([z[:, t] * masks[0], action[:, t]], axis=-1)  # the actions are never masked
        hidden, state = model.lstm.cell(x, [state[0] * masks[1], state[1]])
        np.testing.assert_allclose(whole["means"][:, t], model._heads(hidden)["means"], rtol=1e-5, atol=1e-6)
        stepped = compiled(z[:, t], action[:, t], h, c, *masks)
        np.testing.assert_allclose(stepped["h"], state[0], rtol=1e-5, atol=1e-6)
        h, c = stepped["h"].numpy(), stepped["c"].numpy()
    assert not np.allclose(whole["means"], model([z, action])["means"])  # the masks matter ...
    ones = (np.ones((2, 4), np.float32), np.ones((2, 8), np.float32))
    np.testing.assert_allclose(model([z, action], masks=ones)["means"], model([z, action])["means"], rtol=1e-5,
                               atol=1e-6)  # ... and masks of ones are the plain LSTM


def test_training_dropout_draws_masks_only_in_training_and_still_learns():
    model = small_rnn(dropout=0.3)
    z, action = rng.normal(size=(2, 6, 4)).astype(np.float32), rng.normal(size=(2, 6, 3)).astype(np.float32)
    np.testing.assert_array_equal(model([z, action])["means"], model([z, action])["means"])  # inference: none
    assert not np.allclose(model([z, action], training=True)["means"], model([z, action], training=True)["means"])
    assert MDNRNN.from_config(model.get_config()).dropout == 0.3
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    steps = 7
    batch = {"mu": np.tile(np.linspace(-1, 1, steps, dtype=np.float32)[None, :, None], (8, 1, 4)),
             "logvar": np.full((8, steps, 4), -8.0, np.float32), "action": np.zeros((8, steps, 3), np.float32),
             "reward": np.zeros((8, steps), np.float32), "done": np.zeros((8, steps), bool),
             "mask": np.ones((8, steps), bool)}
    history = model.fit(tf.data.Dataset.from_tensors(batch).repeat(), epochs=15, steps_per_epoch=10, verbose=0)
    losses = history.history["z_nll"]
    assert losses[-1] < losses[0] - 1.0, losses


def test_shuffling_in_time_keeps_each_windows_actions_and_leaves_the_padding():
    action = rng.normal(size=(3, 8, 3))
    mask = np.arange(8)[None, :] < np.array([8, 5, 1])[:, None]
    shuffled = shuffled_in_time(action, mask, seed=0)
    for window in range(3):
        valid = mask[window]
        np.testing.assert_array_equal(np.sort(shuffled[window, valid], axis=0), np.sort(action[window, valid], axis=0))
        np.testing.assert_array_equal(shuffled[window, ~valid], action[window, ~valid])
    assert not np.array_equal(shuffled[0], action[0]) and not np.array_equal(shuffled[1], action[1])
    np.testing.assert_array_equal(shuffled, shuffled_in_time(action, mask, seed=0))  # repeatable


def with_action_weights(model, scale):
    """The model with the LSTM kernel's rows that read the actions (the last 3 inputs) set to `scale`."""
    kernel = model.lstm.cell.kernel.numpy()
    kernel[-3:] = scale
    model.lstm.cell.kernel.assign(kernel)
    return model


def test_actions_an_m_ignores_are_worth_nothing_and_used_ones_change_its_losses():
    windows = {"z": rng.normal(size=(4, 9, 4)).astype(np.float32),
               "action": rng.normal(size=(4, 9, 3)).astype(np.float32),
               "reward": rng.normal(size=(4, 9)).astype(np.float32), "done": np.zeros((4, 9), bool),
               "mask": np.ones((4, 9), bool)}
    model = small_rnn(predict_reward=True)
    model.compile()
    blind = shuffled_actions_losses(with_action_weights(model, 0.0), windows, batch_size=2, seed=0)
    for key in ("z_nll", "reward_loss"):
        assert blind["real"][key] == pytest.approx(blind["shuffled"][key], rel=1e-6), key
    used = shuffled_actions_losses(with_action_weights(model, 2.0), windows, batch_size=2, seed=0)
    assert abs(used["real"]["z_nll"] - used["shuffled"]["z_nll"]) > 1e-3


def test_padded_steps_do_not_count():
    model = small_rnn(predict_reward=True, predict_done=True)
    batch = {"action": rng.normal(size=(2, 5, 3)).astype(np.float32), "reward": rng.normal(size=(2, 5)),
             "done": np.zeros((2, 5), bool), "mask": np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)}
    z = rng.normal(size=(2, 5, 4)).astype(np.float32)
    losses = model.compute_losses(batch, z)
    changed_z, changed = z.copy(), {**batch, "reward": batch["reward"].copy()}
    changed_z[0, 3:] += 100.0  # garbage on the padding of episode 0 ...
    changed["reward"][0, 3:] += 100.0
    for key, value in model.compute_losses(changed, changed_z).items():
        assert float(value) == pytest.approx(float(losses[key]), rel=1e-5), key  # ... changes nothing


def test_the_baseline_is_a_gaussian_around_the_current_latent():
    mu = rng.normal(size=(3, 6, 2)).cumsum(axis=1)
    logvar = rng.normal(size=(3, 6, 2)) - 2.0
    lengths = np.array([6, 4, 2])
    valid_next = [(0, slice(1, 6)), (1, slice(1, 4)), (2, slice(1, 2))]
    change = np.concatenate([np.diff(mu[0], axis=0), np.diff(mu[1, :4], axis=0), np.diff(mu[2, :2], axis=0)])
    spread = np.concatenate([np.exp(logvar[episode, steps]) for episode, steps in valid_next])
    variance = baseline_variance(mu, logvar, lengths)
    np.testing.assert_allclose(variance, np.mean(change**2, axis=0) + np.mean(spread, axis=0))
    z = mu + rng.normal(size=mu.shape)  # targets sampled around mu, as the RNN's are
    error = np.concatenate([z[0, 1:] - mu[0, :-1], z[1, 1:4] - mu[1, :3], z[2, 1:2] - mu[2, :1]])
    mask = np.arange(6)[None, :] < lengths[:, None]
    expected = np.mean(0.5 * np.log(2 * np.pi * variance) + error**2 / (2 * variance))
    assert baseline_nll(z, mu, mask, variance) == pytest.approx(expected)


def tiny_series(lengths, steps=10, z=2):
    count = len(lengths)
    mu = np.zeros((count, steps, z), np.float16)
    for index, length in enumerate(lengths):
        mu[index, :length, 0] = np.arange(length) + 100 * index  # identifies episode and step
    done = np.arange(steps)[None, :] >= np.array(lengths)[:, None] - 1
    return {"mu": mu, "logvar": np.zeros_like(mu), "action": np.zeros((count, steps, 3), np.float16),
            "reward": np.zeros((count, steps), np.float16), "done": done, "length": np.array(lengths, np.int32)}


def test_training_windows_lie_within_episodes_and_mask_the_rest():
    series = tiny_series([10, 4])
    batches = list(sequence_dataset(series, np.array([0, 1]), window=6, batch_size=2, seed=1).take(20))
    starts = set()
    for batch in batches:
        for mu, mask in zip(batch["mu"].numpy()[..., 0], batch["mask"].numpy(), strict=True):
            episode, start = int(mu[0] // 100), int(mu[0] % 100)
            length = [10, 4][episode]
            np.testing.assert_array_equal(mask, np.arange(start, start + 6) < length)
            np.testing.assert_array_equal(mu[mask], 100 * episode + np.arange(start, start + 6)[mask])
            assert start <= max(length - 6 + 1, 0)
            starts.add((episode, start))
    assert {start for episode, start in starts if episode == 0} == set(range(6)), "every start is drawn"
    assert {start for episode, start in starts if episode == 1} == {0}
    again = list(sequence_dataset(series, np.array([0, 1]), window=6, batch_size=2, seed=1).take(20))
    np.testing.assert_array_equal(batches[-1]["mu"], again[-1]["mu"])


def test_validation_windows_cover_every_transition_once():
    series = tiny_series([10, 4])
    windows = validation_windows(series, [0, 1], window=4, seed=0)
    pairs = []
    for mu, mask in zip(windows["mu"][..., 0], windows["mask"], strict=True):
        pairs += [(mu[t], mu[t + 1]) for t in range(3) if mask[t + 1]]
    expected = [(float(100 * episode + t), float(100 * episode + t + 1))
                for episode, length in enumerate([10, 4]) for t in range(length - 1)]
    assert sorted(pairs) == sorted(expected)
    noise = (windows["z"] - windows["mu"])[windows["mask"]]  # logvar 0: unit-variance samples around mu
    assert 0.5 < noise.std() < 1.5
    np.testing.assert_array_equal(windows["z"], validation_windows(series, [0, 1], window=4, seed=0)["z"])


def test_a_small_rnn_learns_predictable_dynamics_better_than_the_baseline():
    # z_{t+1} = z_t + a_t: the next latent is predictable from z and a, not from z alone.
    keras.utils.set_random_seed(0)
    count, steps = 64, 21
    action = rng.uniform(-1, 1, size=(count, steps, 3)).astype(np.float32)
    mu = np.zeros((count, steps, 2), np.float32)
    mu[:, 0] = rng.normal(size=(count, 2))
    for t in range(steps - 1):
        mu[:, t + 1] = mu[:, t] + 0.5 * action[:, t, :2]
    series = {"mu": mu.astype(np.float16), "logvar": np.full_like(mu, -8.0, dtype=np.float16),
              "action": action.astype(np.float16), "reward": np.zeros((count, steps), np.float16),
              "done": np.zeros((count, steps), bool), "length": np.full(count, steps, np.int32)}
    model = MDNRNN(z_size=2, rnn_size=32, num_mixture=2, seed=0)
    model.build()
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    validation = validation_windows(series, range(48, 64), window=steps, seed=0)
    model.fit(sequence_dataset(series, np.arange(48), window=steps, batch_size=16, seed=0), steps_per_epoch=300,
              epochs=1, verbose=0, shuffle=False)
    nll = model.evaluate(tf.data.Dataset.from_tensor_slices(validation).batch(16), return_dict=True, verbose=0)["z_nll"]
    variance = baseline_variance(mu[:48], series["logvar"][:48], series["length"][:48])
    baseline = baseline_nll(validation["z"], validation["mu"], validation["mask"], variance)
    assert nll < baseline - 0.5, (nll, baseline)
