"""Rollouts that show driving: the original's policy through the untrained agent, on-policy
collection with a trained controller, foreign record folders, per-step driving state."""

import argparse

import numpy as np
import pytest

from common.episodes import list_episodes, load_episode
from common.errors import UserFacingError
from common.layout import controller_dir, model_path, record_dir, rnn_path, vision_dir
from controller import carracing_action, controller_features, linear_actions, num_parameters, save_controller
from rnn.rnn import MDNRNN
from stages.agent import NOISE_STREAM
from stages.memory import encode_series, load_series, one_step_frame_errors, train_memory
from stages.policies import ORIGINAL_AGENT, original_agent_config, original_parameters, random_agent
from stages.rollouts import episode_seed, extract, extracted, run_episode, split_seed
from stages.vision import train_vision
from stages.vision_metrics import driving_probe, linear_probe, r_squared
from vae.vae import ConvVAE

TINY_MODELS = ["--vae_batch_size", "8", "--vae_num_epoch", "1", "--validation_frames", "16", "--holdout_fraction",
               "0.25", "--rnn_size", "16", "--rnn_batch_size", "2", "--rnn_max_seq_len", "10", "--rnn_num_steps", "4",
               "--rnn_validation_every", "2"]


def test_original_parameters_are_cauchy_scaled_by_a_uniform_drawn_per_episode():
    expected_rng, rng = np.random.default_rng(5), np.random.default_rng(5)
    scale = expected_rng.uniform(0.0, 0.01)
    np.testing.assert_array_equal(original_parameters(rng, 867, 0.01),
                                  (expected_rng.standard_cauchy(867) * scale).astype(np.float32))
    # Over episodes: the median |parameter| of a standard Cauchy is 1, so each episode's median
    # estimates its scale s, which must be spread uniformly over (0, 0.01).
    scales = np.array([np.median(np.abs(original_parameters(np.random.default_rng(seed), 4000, 0.01)))
                       for seed in range(300)])
    assert scales.max() < 0.0105 and scales.min() < 0.0005
    quantiles = np.quantile(scales, [0.25, 0.5, 0.75])
    np.testing.assert_allclose(quantiles, [0.0025, 0.005, 0.0075], atol=0.001)
    heavy = original_parameters(np.random.default_rng(1), 100_000, 0.01)
    assert np.abs(heavy).max() > 1000 * np.median(np.abs(heavy)), "Cauchy tails, not a normal's"


def test_exploration_noise_is_added_to_the_tanh_outputs_and_clipped():
    rng = np.random.default_rng(0)
    features, parameters = rng.normal(size=(6, 5)), rng.normal(size=(6, 18))
    noise = rng.normal(scale=0.5, size=(6, 3))
    weights, biases = parameters[:, 3:].reshape(6, 5, 3), parameters[:, :3]
    outputs = np.tanh(np.einsum("nf,nfa->na", features, weights) + biases)
    expected = carracing_action(np.clip(outputs + noise, -1, 1))
    np.testing.assert_allclose(linear_actions(features.astype(np.float32), parameters, noise), expected, atol=1e-6)
    np.testing.assert_allclose(linear_actions(features.astype(np.float32), parameters), carracing_action(outputs),
                               atol=1e-6)


def test_the_untrained_agent_is_the_same_in_every_build(make_config):
    config = make_config()
    first, again = random_agent(config), random_agent(config)
    other = random_agent(make_config("--seed", 1))
    for model in ("vision_model", "rnn"):
        weights = [np.asarray(w) for w in getattr(first, model).get_weights()]
        assert all(np.array_equal(a, b) for a, b in zip(weights, getattr(again, model).get_weights(), strict=True))
        assert not all(np.array_equal(a, b) for a, b in zip(weights, getattr(other, model).get_weights(), strict=True))
    assert first.rnn.rnn_size == ORIGINAL_AGENT["rnn_size"] != config.rnn_size  # not the config's M


def test_original_policy_actions_are_the_controller_mapping_of_z_and_h(make_config):
    """Replay an original-policy episode with numpy: z sampled from the untrained V, h from the untrained
    M, the episode's Cauchy controller, then tanh and CarRacing's mapping."""
    config = make_config("--max_frames", 20, "--min_frames", 5)
    seed = episode_seed(config.seed, 0, 0)
    episode = run_episode(config, seed)
    agent, agent_config = random_agent(config), original_agent_config(config)
    track_seed, policy_seed = split_seed(seed)
    parameters = original_parameters(np.random.default_rng(policy_seed), num_parameters(agent_config), 0.01)
    noise = np.random.default_rng([track_seed, NOISE_STREAM])
    h = c = np.zeros((1, 256), np.float32)
    for step, frame in enumerate(episode["obs"]):
        mu, logvar = agent.vision_model.encode(frame[None].astype(np.float32) / 255.0)
        z = (mu.numpy() + np.exp(0.5 * logvar.numpy()) * noise.standard_normal(32)).astype(np.float32)
        weights, biases = parameters[3:].reshape(32 + 256, 3), parameters[:3]
        features = controller_features(z, h, c, agent_config)
        expected = carracing_action(np.tanh(features @ weights + biases))[0]
        np.testing.assert_allclose(episode["action"][step], expected, atol=1e-4)
        outputs = agent.rnn.step(z, expected[None], [h, c])
        h, c = (state.numpy() for state in outputs["state"])
    assert episode["speed"].shape == (len(episode["obs"]),) and episode["speed"][0] == 0.0
    assert episode["speed"][-1] > 0.0, "the car moves off the start"


def save_world_model(config):
    """An untrained VAE and MDN-RNN of the config's sizes, saved where the later stages put trained ones."""
    vision = ConvVAE(config.z_size, seed=0)
    vision.build()
    vision.save(model_path(config, "vae"))
    rnn = MDNRNN(config.z_size, config.rnn_size, config.rnn_num_mixture, seed=0)
    rnn.build()
    rnn.save(rnn_path(config))


def test_on_policy_rounds_add_controller_episodes_to_the_record_folder(make_config):
    config = make_config("--num_episodes", 2, "--max_frames", 15, "--min_frames", 5, "--num_workers", 1,
                         "--extract_policy", "white")
    extract(config)
    vision_dir(config).mkdir(parents=True)
    save_world_model(config)
    parameters = np.zeros(num_parameters(config), np.float32)
    parameters[:3] = [0.0, 2.0, -1.0]  # no weights: steer 0, gas (tanh(2) + 1) / 2, no brake
    save_controller(controller_dir(config) / "best.json", parameters, config)

    def round_config(*overrides):
        return make_config("--num_episodes", 3, "--max_frames", 15, "--min_frames", 5, "--num_workers", 1,
                           "--extract_policy", "controller", "--extract_round", 1, *overrides)

    exact = round_config("--extract_action_noise", 0)
    assert not extracted(exact)
    summary = extract(exact)
    assert summary["episodes_collected"] == 3 and summary["other_episode_files"] == 2
    assert extracted(exact) and (record_dir(config) / "extract_round01.config").exists()
    rounds = sorted(record_dir(config).glob("round01_episode_*.npz"))
    assert [path.name for path in rounds] == [f"round01_episode_{index:06d}.npz" for index in range(3)]
    for path in rounds:
        episode = load_episode(path)
        assert str(episode["policy"]) == "controller" and len(episode["obs"]) == 15
        np.testing.assert_allclose(episode["action"], np.tile([0.0, (np.tanh(2.0) + 1) / 2, 0.0], (15, 1)),
                                   atol=1e-3)
    assert len(list_episodes(record_dir(config))) == 5, "later stages read both rounds"

    noisy = round_config("--extract_action_noise", 0.3, "--extract_round", 2)
    extract(noisy)
    actions = load_episode(record_dir(config) / "round02_episode_000000.npz")["action"].astype(np.float32)
    assert np.all(actions >= [-1, 0, 0]) and np.all(actions <= 1)
    assert actions[:, 0].std() > 0.1, "exploration noise moves the steering"
    # the noise comes from each episode's own stream: played alone, episode 0 draws the same noise
    # (its actions agree up to the networks' last bits, which differ with the batch)
    seed = episode_seed(noisy.seed, 0, 0, 2)
    alone = run_episode(noisy, seed)["action"]
    np.testing.assert_allclose(alone[:5], actions[:5], atol=2e-3)

    # The round was collected with this controller: a changed controller may not add to it.
    parameters[:3] = [0.5, 2.0, -1.0]
    save_controller(controller_dir(config) / "best.json", parameters, config)
    more = round_config("--extract_action_noise", 0, "--num_episodes", 4)
    with pytest.raises(UserFacingError, match="collected with another controller or world model"):
        extract(more)


def test_a_controller_of_another_world_model_is_refused(make_config):
    config = make_config("--num_episodes", 1, "--max_frames", 10, "--min_frames", 5, "--num_workers", 1,
                         "--extract_policy", "controller")
    vision_dir(config).mkdir(parents=True)
    save_world_model(config)
    other = argparse.Namespace(**{**vars(config), "rnn_size": 32})
    save_controller(controller_dir(config) / "best.json", np.zeros(num_parameters(other)), other)
    with pytest.raises(UserFacingError, match="best.json: made with rnn_size=32, the config says 64"):
        extract(config)
    save_controller(controller_dir(config) / "best.json", np.zeros(num_parameters(config)), config)
    rnn_path(config).unlink()
    with pytest.raises(UserFacingError, match="rnn.keras: missing; the controller policy drives through"):
        extract(config)
    assert not record_dir(config).exists(), "refused before anything is written"


def write_foreign_episodes(folder, count, length, seed=0):
    """Episode files as another World Models implementation writes them: random-integer names, no N,
    no extract.config."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for _ in range(count):
        np.savez_compressed(folder / f"{rng.integers(2**31)}.npz",
                            obs=rng.integers(0, 256, (length, 64, 64, 3), dtype=np.uint8),
                            action=rng.uniform(-1, 1, (length, 3)).astype(np.float16),
                            reward=rng.normal(size=length).astype(np.float16),
                            done=np.arange(length) == length - 1)


def test_a_foreign_record_folder_trains_v_series_and_m_and_extract_leaves_it_alone(make_config, capsys):
    config = make_config("--num_episodes", 4, "--max_frames", 20, "--min_frames", 5, "--num_workers", 1,
                         *TINY_MODELS)
    write_foreign_episodes(record_dir(config), 4, 20)
    def listing():
        return sorted(path.name for path in record_dir(config).iterdir() if not path.name.startswith("."))

    before = listing()

    summary = extract(config)
    assert summary["episodes_collected"] == 0 and summary["foreign_episode_files"] == 4
    out = capsys.readouterr().out
    assert "4 episode files that extract.py did not write" in out and "80 frames" in out and "--record_name" in out
    assert listing() == before, "nothing added or left behind"
    assert extracted(config), "the pipeline goes on with the foreign episodes"

    train_vision(config, "vae")
    encode_series(config)
    train_memory(config)
    series = load_series(config)
    assert sorted(series["episode"].tolist()) == before
    assert rnn_path(config).exists()

    # A folder of our own rounds with a foreign file beside them is ours: extract adds what is missing.
    mixed = make_config("--num_episodes", 2, "--max_frames", 10, "--min_frames", 5, "--num_workers", 1,
                        "--extract_policy", "white", "--record_name", "mixed")
    extract(mixed)
    write_foreign_episodes(record_dir(mixed), 1, 10)
    more = make_config("--num_episodes", 3, "--max_frames", 10, "--min_frames", 5, "--num_workers", 1,
                       "--extract_policy", "white", "--record_name", "mixed")
    assert not extracted(more)
    assert extract(more)["episodes_collected"] == 1 and (record_dir(mixed) / "extract.config").exists()

    # More episodes arrive: V is not resumed on them, and the refusal says how to retrain.
    write_foreign_episodes(record_dir(config), 1, 20, seed=1)
    with pytest.raises(UserFacingError, match=r"To retrain the world model on all of them.*mv .*vae_before"):
        train_vision(config, "vae")


def test_one_step_frame_errors_match_numpy(make_config):
    config = make_config()
    agent = random_agent(config)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (6, 64, 64, 3), dtype=np.uint8)
    actions = rng.uniform(-1, 1, (6, 3)).astype(np.float32)
    errors = one_step_frame_errors(agent.vision_model, agent.rnn, frames, actions, batch_size=4)
    images = frames / 255.0
    mu = agent.vision_model.encode(images.astype(np.float32))[0].numpy()
    np.testing.assert_allclose(errors["copy_last"], np.mean((images[:-1] - images[1:]) ** 2, axis=(1, 2, 3)),
                               rtol=1e-5)
    reconstruction = agent.vision_model.decode(mu[1:]).numpy()
    np.testing.assert_allclose(errors["reconstruction"], np.mean((reconstruction - images[1:]) ** 2, axis=(1, 2, 3)),
                               rtol=1e-4)
    h = c = np.zeros((1, 256), np.float32)
    for step in range(5):  # the RNN's prediction of z_{t+1}, step by step
        outputs = agent.rnn.step(mu[step:step + 1], actions[step:step + 1], [h, c])
        h, c = (state.numpy() for state in outputs["state"])
        weights = np.exp(outputs["log_weights"].numpy())
        weights /= weights.sum(-1, keepdims=True)
        predicted = np.sum(weights * outputs["means"].numpy(), axis=-1)
        decoded = agent.vision_model.decode(predicted).numpy()
        np.testing.assert_allclose(errors["rnn"][step], np.mean((decoded[0] - images[step + 1]) ** 2), rtol=1e-4)


def test_the_driving_probe_is_least_squares_with_a_bias():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(400, 8))
    speed = z @ rng.normal(size=8) + 30.0 + 0.01 * rng.normal(size=400)
    predicted = linear_probe(z[:300], speed[:300], z[300:], ridge=2.0)
    mean, scale = z[:300].mean(axis=0), z[:300].std(axis=0)
    standardised = (z[:300] - mean) / scale  # ridge on standardised features, the bias not penalised
    weights = np.linalg.solve(standardised.T @ standardised + 2.0 * np.eye(8),
                              standardised.T @ (speed[:300] - speed[:300].mean()))
    np.testing.assert_allclose(predicted, (z[300:] - mean) / scale @ weights + speed[:300].mean(), rtol=1e-6)
    assert r_squared(speed[300:], predicted) > 0.999
    assert r_squared(speed[300:], np.full(100, speed[300:].mean())) == 0.0

    on_road = z[:, 0] > 0.3  # knowable from z: the probe beats guessing the majority
    probe = driving_probe(z[:300], {"speed": speed[:300], "on_road": on_road[:300]},
                          z[300:], {"speed": speed[300:], "on_road": on_road[300:]})
    assert probe["speed_r2"] > 0.999 and probe["on_road_accuracy"] > 0.85
    assert probe["on_road_majority"] == np.mean(~on_road[300:])
    noise = rng.normal(size=(400, 8))  # z that knows nothing: R^2 near or below 0
    assert driving_probe(noise[:300], {"speed": speed[:300], "on_road": on_road[:300]},
                         noise[300:], {"speed": speed[300:], "on_road": on_road[300:]})["speed_r2"] < 0.1
