"""The controller's math and files, the agent, the dream environment."""

import json

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from scipy import stats

from common.config import parse_config
from common.errors import UserFacingError
from common.statistics import compare_runs, compare_scores, mean_interval, runs_summary, sample_std
from conftest import RUN_RECORDS
from controller import (
    carracing_action,
    controller_features,
    linear_actions,
    load_controller,
    num_parameters,
    reduce_scores,
    save_controller,
    split_parameters,
    weight_decay_penalty,
)
from env import DreamBatch, DreamEnv, make_env
from rnn.rnn import MDNRNN
from stages.agent import Agent, episode_seeds, play_dreams, play_episodes
from stages.evaluation import controller_evaluated, describe_scores, evaluation_scores, write_evaluation
from stages.evolution import _new_state, cma_seed, held_out_seeds, real_steps_spent, training_seeds
from vae.vae import ConvVAE

rng = np.random.default_rng(0)


def test_the_paper_controller_has_867_parameters_and_the_original_layout():
    paper = parse_config([])
    assert num_parameters(paper) == 867  # (32 + 256 + 1) * 3
    assert num_parameters(parse_config(["--exp_mode", "z"])) == 99
    assert num_parameters(parse_config(["--state_space", "2"])) == (32 + 512 + 1) * 3
    parameters = np.arange(3 + 4 * 3, dtype=np.float32)
    weights, biases = split_parameters(parameters, 4)
    np.testing.assert_array_equal(biases, [0, 1, 2])  # biases first, then the weight matrix row by row
    np.testing.assert_array_equal(weights[1], [6, 7, 8])


def test_linear_actions_match_a_loop_over_episodes_each_with_its_own_parameters():
    features = rng.normal(size=(5, 4)).astype(np.float32)
    parameters = rng.normal(size=(5, 15)).astype(np.float32)
    actions = linear_actions(features, parameters)
    for row in range(5):
        bias, weight = parameters[row, :3], parameters[row, 3:].reshape(4, 3)
        output = np.tanh(features[row] @ weight + bias)
        expected = [output[0], (output[1] + 1) / 2, max(output[2], 0.0)]
        np.testing.assert_allclose(actions[row], expected, rtol=1e-5, atol=1e-6)
    assert actions.dtype == np.float32
    np.testing.assert_array_equal(carracing_action([0.0, 0.0, 0.0]), [0.0, 0.5, 0.0])


def test_fitness_reduction_and_weight_decay_are_the_originals():
    scores = np.array([[1.0, 3.0], [-2.0, 10.0]])
    np.testing.assert_allclose(reduce_scores(scores, "mean"), [2.0, 4.0])
    np.testing.assert_allclose(reduce_scores(scores, "min"), [1.0, -2.0])
    parameters = np.array([[1.0, -1.0, 2.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(weight_decay_penalty(parameters, 0.01), [-0.01 * 6 / 3, 0.0])


def test_controller_files_round_trip_and_bad_ones_are_named(tmp_path, make_config):
    config = make_config()
    parameters = rng.normal(size=num_parameters(config)).astype(np.float32)
    path = save_controller(tmp_path / "best.json", parameters, config, score=1.5)
    loaded, document = load_controller(path, config)
    np.testing.assert_array_equal(loaded, parameters)
    assert document["score"] == 1.5 and document["vision"] == config.vision
    original = tmp_path / "original.json"
    original.write_text(json.dumps([parameters.tolist(), 900.0]))  # the original repository's format
    np.testing.assert_array_equal(load_controller(original, config)[0], parameters)
    with pytest.raises(UserFacingError, match="best.json: made with rnn_size=64"):
        load_controller(path, make_config("--rnn_size", 32))
    short = tmp_path / "short.json"
    short.write_text(json.dumps({"parameters": [0.0] * 10}))
    with pytest.raises(UserFacingError, match=r"short.json: needs 291 finite parameters"):
        load_controller(short, config)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(UserFacingError, match="broken.json: not a controller JSON file"):
        load_controller(broken, config)
    with pytest.raises(UserFacingError, match="missing.json: no such controller file"):
        load_controller(tmp_path / "missing.json", config)


def test_episode_seeds_are_fixed_and_purposes_never_share_one():
    assert episode_seeds(0, "train", 3, 4) == episode_seeds(0, "train", 3, 4)
    seeds = [set(episode_seeds(0, purpose, generation, 50))
             for purpose, generation in (("train", 0), ("train", 1), ("test", 0), ("evaluate", 0), ("validate", 0))]
    assert sum(len(group) for group in seeds) == len(set().union(*seeds))


def test_another_cma_es_run_trains_on_its_own_episodes_and_is_tested_on_the_same(make_config):
    first, second = make_config(), make_config("--controller_seed", 1)
    assert held_out_seeds(first) == held_out_seeds(second)
    assert not set(training_seeds(first, 3)) & set(training_seeds(second, 3))
    # run 0 keeps the seeds it had before controller_seed existed: the recorded laptop run's evaluation
    # episodes, and pycma's seed + 1
    recorded_seeds, _ = evaluation_scores(RUN_RECORDS / "laptop_vaegan" / "best.json")
    assert list(recorded_seeds) == episode_seeds(0, "evaluate", 0, 100) and cma_seed(first) == 1
    runs = [cma_seed(make_config("--controller_seed", k)) for k in range(1, 6)]
    episodes = {seed for purpose in ("train", "test", "evaluate", "validate")
                for seed in episode_seeds(0, purpose, 0, 100)}
    assert len(set(runs)) == 5 and all(1 <= seed < 2**32 for seed in runs) and not set(runs) & episodes


# -- the agent and the dream, with small untrained networks ------------------------------------

@pytest.fixture
def world(make_config):
    config = make_config("--z_size", 4, "--rnn_size", 8, "--max_frames", 12, "--min_frames", 5)
    vision_model = ConvVAE(4, 0.5, seed=0)
    vision_model.build()
    rnn = MDNRNN(4, 8, 3, predict_reward=True, predict_done=True, seed=0)
    rnn.build()
    initial_z = {"mu": rng.normal(size=(5, 4)).tolist(), "logvar": np.full((5, 4), -2.0).tolist()}
    return config, vision_model, rnn, initial_z


def test_features_follow_exp_mode_and_state_space(world, make_config):
    z, h, c = np.ones((2, 4)), 2 * np.ones((2, 8)), 3 * np.ones((2, 8))
    assert controller_features(z, h, c, make_config("--exp_mode", "z")).shape == (2, 4)
    np.testing.assert_array_equal(controller_features(z, h, c, make_config())[0], [1] * 4 + [2] * 8)
    assert controller_features(z, h, c, make_config("--state_space", 2)).shape == (2, 20)


def test_a_stalled_episode_ends_and_is_charged_the_step_reward_of_the_steps_it_skips(world):
    config, vision_model, rnn, _ = world
    agent = Agent(vision_model, rnn, config)
    parameters = rng.normal(scale=0.5, size=(1, num_parameters(config))).astype(np.float32)
    full = play_episodes(agent, config, parameters, [21], record=True)
    rewards = full["reward"][0]
    assert len(rewards) == config.max_frames and full["scores"][0] == pytest.approx(rewards.sum())
    stall_steps, last_tile = 3, 0
    for step, reward in enumerate(rewards, start=1):  # the rule, spelt out: stop 3 steps after the last new tile
        last_tile = step if reward > 0 else last_tile
        if step - last_tile >= stall_steps:
            break
    stopped = play_episodes(agent, config, parameters, [21], stall_steps=stall_steps)
    assert stopped["steps"][0] == step < config.max_frames
    assert stopped["scores"][0] == pytest.approx(rewards[:step].sum() - 0.1 * (config.max_frames - step), rel=1e-5)
    assert play_episodes(agent, config, parameters, [21])["scores"][0] == pytest.approx(full["scores"][0])


def test_the_agent_plays_batched_episodes_as_it_plays_them_one_by_one(world):
    config, vision_model, rnn, _ = world
    agent = Agent(vision_model, rnn, config)
    parameters = rng.normal(scale=0.5, size=(2, num_parameters(config))).astype(np.float32)
    seeds = [11, 12]
    batched = play_episodes(agent, config, parameters, seeds, trace=True)
    assert batched["steps"].tolist() == [12, 12]
    for row, seed in enumerate(seeds):
        alone = play_episodes(agent, config, parameters[row:row + 1], [seed], trace=True)
        # oneDNN picks other kernels for a batch of 1 and of 2: round-off of ~1e-6 grows over the 12 steps
        np.testing.assert_allclose(alone["z"][0], batched["z"][row], rtol=1e-4, atol=1e-4)
        assert alone["scores"][0] == pytest.approx(batched["scores"][row], rel=1e-4)
    again = play_episodes(agent, config, parameters, seeds)
    np.testing.assert_array_equal(again["scores"], batched["scores"])
    assert batched["predicted"][0].shape == (12, 4)
    # the traced frames are the ones seen at each step (copies, not views of the batch's last frame)
    np.testing.assert_array_equal(batched["frames"][0][0], make_env(config, seed=seeds[0]).reset()[0])
    assert not np.array_equal(batched["frames"][0][0], batched["frames"][0][-1])


def test_the_agent_refuses_an_rnn_of_other_sizes(world, make_config):
    config, vision_model, rnn, _ = world
    with pytest.raises(UserFacingError, match="rnn_size=8; the config says z_size=4, rnn_size=64"):
        Agent(vision_model, rnn, make_config("--z_size", 4))


@pytest.mark.filterwarnings("ignore:.*Box observation space m:UserWarning")  # latents are unbounded
def test_the_dream_env_passes_gymnasiums_checker_and_is_seeded(world):
    config, _, rnn, initial_z = world
    env = DreamEnv(rnn, initial_z, config)
    check_env(env, skip_render_check=True)
    first = [env.reset(seed=5)[0]] + [env.step(np.array([0.1, 0.5, 0.0], np.float32))[0] for _ in range(3)]
    second = [env.reset(seed=5)[0]] + [env.step(np.array([0.1, 0.5, 0.0], np.float32))[0] for _ in range(3)]
    np.testing.assert_array_equal(np.stack(first), np.stack(second))
    steps = 0
    env.reset(seed=1)
    while True:
        steps += 1
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert isinstance(reward, float) and info["h"].shape == (8,)
        if terminated or truncated:
            break
    assert steps <= config.max_frames


def test_dreams_repeat_across_candidates_and_zero_temperature_follows_the_likeliest_mean(world, make_config):
    config, _, rnn, initial_z = world
    dream = DreamBatch(rnn, initial_z, config)
    same = np.tile(rng.normal(scale=0.3, size=(1, num_parameters(config))), (3, 1))
    result = play_dreams(dream, config, same, episodes=2, seed=4)
    assert result["scores"].shape == (3, 2)
    np.testing.assert_allclose(result["scores"], np.tile(result["scores"][:1], (3, 1)), rtol=1e-5)
    assert result["scores"][0, 0] != result["scores"][0, 1]  # two different dreams
    cold = DreamBatch(rnn, initial_z, make_config("--z_size", 4, "--rnn_size", 8, "--rnn_temperature", 1e-9))
    cold.reset(2, seed=0)
    z = cold.z.copy()
    cold.step(np.zeros((2, 3), np.float32))
    outputs = cold.rnn_step(z, np.zeros((2, 3), np.float32), np.zeros((2, 8), np.float32), np.zeros((2, 8), np.float32))
    likeliest = np.argmax(outputs["log_weights"].numpy(), axis=-1)[..., None]
    np.testing.assert_allclose(cold.z, np.take_along_axis(outputs["means"].numpy(), likeliest, -1)[..., 0], rtol=1e-5)


def test_a_dream_episode_lasts_dream_max_frames_or_else_max_frames(world, make_config):
    _, _, rnn, initial_z = world
    for settings, length in (((), 12), (("--dream_max_frames", 5), 5)):
        config = make_config("--z_size", 4, "--rnn_size", 8, "--max_frames", 12, "--min_frames", 5, *settings)
        dream = DreamBatch(rnn, initial_z, config)
        dream.reset(2, seed=0)
        truncated = [dream.step(np.zeros((2, 3), np.float32))[2][0] for _ in range(length)]
        assert truncated == [False] * (length - 1) + [True]


def test_dream_dropout_draws_a_mask_per_dream_episode_fixed_within_it(world, make_config):
    """dream_dropout: every dream episode has its own masks, kept for all its steps and redrawn at the next
    reset; copies of a dream (one per candidate) share theirs; without it the dreams are the ones they were."""
    config, _, rnn, initial_z = world
    settings = ("--z_size", 4, "--rnn_size", 8)
    plain = DreamBatch(rnn, initial_z, make_config(*settings))
    dream = DreamBatch(rnn, initial_z, make_config(*settings, "--dream_dropout", 0.5))
    for batch in (plain, dream):
        batch.reset(6, seed=3, copies=2)
    np.testing.assert_array_equal(dream.z, plain.z)  # the same starts: masks are drawn after them
    assert plain.masks is None and dream.masks[0].shape == (6, 4) and dream.masks[1].shape == (6, 8)
    z_mask, h_mask = (mask.copy() for mask in dream.masks)
    np.testing.assert_array_equal(z_mask[:3], z_mask[3:])  # shared by the copies
    assert len({row.tobytes() for row in h_mask[:3]}) == 3  # one per dream episode
    h, c, z = dream.h.copy(), dream.c.copy(), dream.z.copy()
    for _ in range(4):
        dream.step(np.zeros((6, 3), np.float32))
        np.testing.assert_array_equal(dream.masks[0], z_mask)  # fixed within the episode
    expected = rnn.step(z * z_mask, np.zeros((6, 3), np.float32), [h * h_mask, c])  # the first step used them
    dream.reset(6, seed=3, copies=2)
    dream.step(np.zeros((6, 3), np.float32))
    np.testing.assert_allclose(dream.h, expected["state"][0], rtol=1e-5, atol=1e-6)
    dream.reset(6, seed=4, copies=2)
    assert not np.array_equal(dream.masks[1], h_mask)  # redrawn for the next dreams


def test_score_statistics_match_their_closed_forms():
    rng = np.random.default_rng(0)
    scores = rng.normal(500.0, 100.0, 10)
    low, high = mean_interval(scores)
    half_width = 2.2621571627409915 * scores.std(ddof=1) / np.sqrt(10)  # t(0.975, 9 degrees of freedom), tables
    assert (low, high) == pytest.approx((scores.mean() - half_width, scores.mean() + half_width))
    other = rng.normal(300.0, 50.0, 30)  # other episodes: Welch's t-test and Mann-Whitney
    unpaired = compare_scores(scores, other, paired=False)
    welch_t = (scores.mean() - other.mean()) / np.sqrt(scores.var(ddof=1) / 10 + other.var(ddof=1) / 30)
    assert unpaired["t"] == pytest.approx(welch_t) and unpaired["difference"] == pytest.approx(200.0, abs=60)
    assert unpaired["low"] < unpaired["difference"] < unpaired["high"] and unpaired["p_t"] < 1e-3
    assert unpaired["p_rank"] < 1e-3 and not unpaired["paired"]
    better = scores + rng.normal(20.0, 5.0, 10)  # the same episodes played better: the paired tests see it
    paired = compare_scores(better, scores, paired=True)
    differences = better - scores
    assert paired["t"] == pytest.approx(differences.mean() / (differences.std(ddof=1) / np.sqrt(10)))
    assert paired["low"] < paired["difference"] < paired["high"] and 0 < paired["low"]
    assert paired["p_t"] < 1e-3 and paired["p_rank"] < 0.01
    assert compare_scores(better, scores, paired=False)["p_t"] > 0.3  # unpaired, the shift drowns in the tracks
    same = compare_scores(scores, scores, paired=True)
    assert same["difference"] == 0 and same["p_t"] == same["p_rank"] == 1.0  # not NaN (the smoke scale's case)


def test_an_evaluation_in_envpool_is_kept_beside_the_judges_and_each_is_found_again(tmp_path, make_config):
    controller = tmp_path / "best.json"
    controller.write_text("[[0.0], 0.0]")
    judged = write_evaluation(make_config(), controller, [11, 12], np.array([10.0, 20.0]))
    fast = write_evaluation(make_config("--env_backend", "envpool"), controller, [11, 12], np.array([30.0, 50.0]))
    assert judged["env_backend"] == "gymnasium" and fast["env_backend"] == "envpool"
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "best.json", "best_evaluation.csv", "best_evaluation.json", "best_evaluation_envpool.csv",
        "best_evaluation_envpool.json", "best_scores.png", "best_scores_envpool.png"]
    assert evaluation_scores(controller)[1].tolist() == [10.0, 20.0]
    assert evaluation_scores(controller, "envpool")[1].tolist() == [30.0, 50.0]
    assert controller_evaluated(make_config(), controller, 2)["mean"] == 15.0
    assert controller_evaluated(make_config("--env_backend", "envpool"), controller, 2)["mean"] == 40.0


def test_validation_scores_have_their_own_episodes_and_files_and_never_stand_for_the_test_score(tmp_path, make_config):
    controller = tmp_path / "best.json"
    controller.write_text("[[0.0], 0.0]")
    config = make_config()
    write_evaluation(config, controller, [11, 12, 13], np.array([10.0, 20.0, 60.0]))
    validation = write_evaluation(config, controller, [21, 22], np.array([100.0, 200.0]), "validation")
    assert validation["episode_set"] == "validation" and validation["std"] == pytest.approx(np.std([100, 200], ddof=1))
    assert {"best_validation.csv", "best_validation.json", "best_validation_scores.png"} <= {
        path.name for path in tmp_path.iterdir()}
    assert evaluation_scores(controller)[1].tolist() == [10.0, 20.0, 60.0]  # the test scores are untouched
    assert evaluation_scores(controller, episode_set="validation")[1].tolist() == [100.0, 200.0]
    assert controller_evaluated(config, controller, 3)["mean"] == 30.0
    assert controller_evaluated(config, controller, 2, "validation")["mean"] == 150.0
    assert controller_evaluated(config, controller, 3, "validation") is None  # another number of episodes


def test_standard_deviations_are_sample_ones_and_real_steps_count_every_test():
    scores = rng.normal(500, 100, 16)
    assert sample_std(scores) == pytest.approx(np.std(scores, ddof=1)) and sample_std([7.0]) == 0.0
    log = [{"steps": 16000}, {"steps": 17500}]
    assert real_steps_spent({"initial_steps": 16000}, log) == 49500  # generation 0's test counts too
    assert real_steps_spent({}, log) == 33500  # a run made before initial_steps was recorded
    assert real_steps_spent({"dream": True, "initial_steps": 900, "real_steps": 16000}, log) == 16000


def test_mirrored_sampling_pairs_the_candidates_and_cma_es_sees_only_ranks(make_config):
    es = _new_state(make_config("--controller_mirrored", 1, "--controller_num_worker", 8), {})["es"]
    candidates = np.array(es.ask())
    np.testing.assert_allclose(candidates[0::2] - es.mean, -(candidates[1::2] - es.mean), atol=1e-12)
    plain = np.array(_new_state(make_config("--controller_num_worker", 8), {})["es"].ask())
    assert not np.allclose(plain[0::2], -plain[1::2])
    with pytest.raises(SystemExit):
        make_config("--controller_mirrored", 1, "--controller_num_worker", 7)
    # why no fitness-shaping key: CMA-ES moves the same way under any increasing transform of the fitness
    means = []
    for shape in (lambda fitness: fitness, lambda fitness: np.exp(fitness / 50.0)):
        es = _new_state(make_config("--controller_num_worker", 8), {})["es"]
        for _ in range(3):
            candidates = np.array(es.ask())
            es.tell(list(candidates), list(-shape(-np.sum((candidates - 0.3) ** 2, axis=1) * 100)))
        means.append(es.mean.copy())
    np.testing.assert_array_equal(means[0], means[1])


def test_scores_are_read_back_and_a_missing_table_is_named(tmp_path):
    (tmp_path / "best_evaluation.csv").write_text("episode,seed,score\n0,11,12.5\n1,12,-3.0\n")
    seeds, scores = evaluation_scores(tmp_path / "best.json")
    assert seeds.tolist() == [11, 12] and scores.tolist() == [12.5, -3.0]
    with pytest.raises(UserFacingError, match="other_evaluation.csv"):
        evaluation_scores(tmp_path / "other.json")
    summary = {"mean": 4.75, "std": 7.75, "episodes": 2, "ci95": [-93.7, 103.2]}
    assert describe_scores(summary) == "4.8 ± 7.8 (95% CI -93.7 to 103.2, 2 episodes)"


def test_methods_are_compared_over_runs_not_over_one_runs_episodes():
    rng = np.random.default_rng(1)
    # three runs a method whose run means spread far more than one run's episode noise allows for
    first = [rng.normal(mean, 50, 100) for mean in (500, 650, 800)]
    second = [rng.normal(mean, 50, 100) for mean in (450, 600, 750)]
    means = [np.mean(scores) for scores in first]
    summary = runs_summary(means)
    assert summary["runs"] == 3 and summary["std"] == pytest.approx(np.std(means, ddof=1))
    assert summary["ci95"] == pytest.approx(list(mean_interval(means)))
    compared = compare_runs(first, second)
    welch = stats.ttest_ind(means, [np.mean(scores) for scores in second], equal_var=False)
    assert compared["p_t"] == pytest.approx(welch.pvalue) and compared["p_t"] > 0.2
    assert compared["low"] < 0 < compared["high"] and compared["bootstrap_low"] < 0 < compared["bootstrap_high"]
    # pooled as 300 episodes of one method, the same scores would look like a sure difference
    assert compare_scores(np.concatenate(first), np.concatenate(second), paired=False)["p_t"] < 0.01
    # a real difference between methods is found by both tests
    better = [scores + 400 for scores in first]
    far = compare_runs(better, second)
    assert far["p_t"] < 0.05 and far["p_bootstrap"] < 0.05 and far["bootstrap_low"] > 0
    assert runs_summary([700.0])["ci95"] is None
    with pytest.raises(ValueError, match="at least two runs"):
        compare_runs(first[:1], second)
