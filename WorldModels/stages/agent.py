"""The agent: V encodes the frame, C acts on [z, h], M advances with (z, a); real episodes and dreams.

Speed: a worker plays a batch of episodes in lockstep (agent_batch_size of them), so each step
costs one batched encoder call and one batched RNN step (both compiled once), while the
controller, a matrix product, runs in numpy. Every episode has its own controller parameters,
so one batch can hold several candidates of a CMA-ES generation.

    play_episodes(agent, config, parameters, seeds)   real CarRacing episodes -> scores, steps
    play_dreams(dream, config, parameters)            the same in the MDN-RNN's dream (env.DreamBatch)
    score_episodes(config, parameters, seeds)         worker task: loads the world model once per process
"""

import json
import os

import numpy as np

from common.episodes import ACTION_SIZE
from common.errors import UserFacingError
from common.layout import initial_z_path, model_path, rnn_path, world_model_key
from common.parallel import worker_count
from controller import controller_features, linear_actions
from env import STEP_REWARD, driving_state, make_env, tiles_visited, track_tiles

NOISE_STREAM = 1  # the agent's z samples draw from their own stream of an episode's seed
EXPLORATION_STREAM = 2  # and so does the exploration noise on its actions
RECORDED = ("frames", "action", "reward", "done", "speed", "on_road")  # play_episodes(record=True), per step
PURPOSES = {"train": 0, "test": 1, "evaluate": 2, "validate": 4, "probe": 5}  # 3 is CMA_STREAM
CMA_STREAM = 3  # CMA-ES's own seed (evolution.cma_seed) draws from a stream no episode seed comes from


def episode_seeds(base_seed, purpose, generation, count, controller_seed=0):
    """`count` episode seeds for a purpose: "train" (generation g's episodes), "test" (held-out
    evaluations of the mean), "evaluate" (evaluate.py's test episodes), "validate" (its validation
    episodes, for choosing between settings) or "probe" (the start states of M's held-action probe):
    independent streams, so they never meet.
    controller_seed k > 0 gives another CMA-ES run's training episodes their own stream."""
    extra = [controller_seed] if controller_seed else []  # run 0 keeps the streams it had before the key
    sequence = np.random.SeedSequence([base_seed, PURPOSES[purpose], generation, *extra])
    return [int(seed) for seed in sequence.generate_state(count, np.uint32)]


class Agent:
    """A trained world model (vision model, MDN-RNN) ready to drive: compiled encode and step."""

    def __init__(self, vision_model, rnn, config):
        from rnn.rnn import step_function
        from stages.memory import frame_encoder

        if rnn.z_size != config.z_size or rnn.rnn_size != config.rnn_size:
            raise UserFacingError(f"the MDN-RNN has z_size={rnn.z_size}, rnn_size={rnn.rnn_size}; the config says "
                                  f"z_size={config.z_size}, rnn_size={config.rnn_size}")
        self.vision_model, self.rnn = vision_model, rnn
        self.encode, self.step = frame_encoder(vision_model), step_function(rnn)
        self.sample_z = config.controller_z == "sample"

    def latents(self, frames, noise):
        """z of uint8 frames (n, 64, 64, 3): the mean, or a sample using standard normal noise (n, z)."""
        mu, logvar = (value.numpy() for value in self.encode(frames))
        return mu + np.exp(0.5 * logvar) * noise if self.sample_z else mu


def load_agent(config):
    """The Agent of the config's vision model: <vision>/<vision>.keras and <vision>/rnn.keras (refused if
    the MDN-RNN was not trained on this vision model's series)."""
    from stages.memory import check_world_model, load_rnn
    from stages.vision import load_vision_model

    check_world_model(config)
    return Agent(load_vision_model(model_path(config, config.vision), config.z_size),
                 load_rnn(rnn_path(config)), config)


def load_dream(config):
    """An env.DreamBatch of the config's MDN-RNN, starting from its initial_z.json."""
    from env import DreamBatch
    from stages.memory import check_world_model, load_rnn

    check_world_model(config)
    path = initial_z_path(config)
    try:
        initial_z = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UserFacingError(f"{path}: unreadable ({error}); run rnn_train.py") from None
    return DreamBatch(load_rnn(rnn_path(config)), initial_z, config)


def stalled_score(score, steps, max_steps):
    """The score of an episode stopped after `steps` of `max_steps` for earning no new tile: what it
    earned, plus the step reward it would still pay (CarRacing's -0.1 a step) had it run to the end
    without a new tile, so stopped and full episodes compare."""
    return score + STEP_REWARD * (max_steps - steps)


def play_episodes(agent, config, parameters, seeds, trace=False, record=False, full_episode=False,
                  action_noise=0.0, stall_steps=0):
    """Play one real episode per seed, each with its row of controller parameters (n, P), in lockstep.

    Returns {"scores": (n,) summed rewards, "steps": (n,) int}. With trace, also "frames", "z" and
    "predicted" (the RNN's expected next z after each step), one array per episode, for GIFs; with
    record, what an episode file holds: "frames", "action", "reward", "done", "speed", "on_road"
    (these two where the simulator reports them: not envpool) per episode and "track_tiles",
    "tiles_visited" (n,). action_noise: std of Gaussian noise added to the controller's tanh outputs
    (exploration when collecting rollouts), drawn from each episode's own stream. The random draws of
    an episode never depend on the others in its batch; the networks' outputs do, in the last bits
    (oneDNN computes a batch of 1 another way than a batch of 4), so an episode is reproduced exactly
    by playing its whole batch again. full_episode: as extract. stall_steps > 0 ends an episode once
    that many steps have passed without a new tile (a positive reward), with stalled_score; "steps"
    counts the steps really played.
    """
    parameters = np.asarray(parameters, np.float32)
    count, size = len(seeds), agent.rnn.rnn_size
    envs = [make_env(config, seed=seed, full_episode=full_episode) for seed in seeds]
    noise = [np.random.default_rng([seed, NOISE_STREAM]) for seed in seeds]
    exploration = [np.random.default_rng([seed, EXPLORATION_STREAM]) for seed in seeds]
    frames = np.stack([env.reset()[0] for env in envs])
    h, c = np.zeros((count, size), np.float32), np.zeros((count, size), np.float32)
    scores, steps, alive = np.zeros(count), np.zeros(count, np.int64), np.ones(count, bool)
    last_tile = np.zeros(count, np.int64)  # the step of each episode's last new tile
    reports_state = record and driving_state(envs[0]) is not None  # envpool does not report speed and on_road
    keys = ((("frames", "z", "predicted") if trace else ())
            + (tuple(key for key in RECORDED if reports_state or key not in ("speed", "on_road")) if record else ()))
    traces = [{key: [] for key in keys} for _ in range(count)]
    while alive.any():
        active = np.flatnonzero(alive)
        z = agent.latents(frames[active], np.stack([noise[index].standard_normal(config.z_size) for index in active]))
        features = controller_features(z, h[active], c[active], config)
        noises = (np.stack([exploration[index].standard_normal(ACTION_SIZE) for index in active]) * action_noise
                  if action_noise else None)
        actions = linear_actions(features, parameters[active], noises)
        outputs = agent.step(z, actions, h[active], c[active])
        h[active], c[active] = outputs["h"].numpy(), outputs["c"].numpy()
        predicted = outputs["mean"].numpy() if trace else None
        for row, index in enumerate(active):
            if keys:
                seen = {"frames": frames[index].copy(), "z": z[row], "action": actions[row]}
                if trace:
                    seen["predicted"] = predicted[row]
                if reports_state:
                    seen["speed"], seen["on_road"] = driving_state(envs[index])
            frame, reward, terminated, truncated, _ = envs[index].step(actions[row])
            alive[index] = not (terminated or truncated)
            if keys:
                seen["reward"], seen["done"] = reward, not alive[index]
                for key in keys:
                    traces[index][key].append(np.asarray(seen[key]))
            frames[index], scores[index], steps[index] = frame, scores[index] + reward, steps[index] + 1
            if reward > 0:
                last_tile[index] = steps[index]
            if alive[index] and stall_steps and steps[index] - last_tile[index] >= stall_steps:
                alive[index] = False
                scores[index] = stalled_score(scores[index], steps[index], config.max_frames)
    result = {"scores": scores, "steps": steps}
    result.update({key: [np.stack(episode[key]) for episode in traces] for key in keys})
    if record:
        result["track_tiles"] = np.array([track_tiles(env) for env in envs])
        result["tiles_visited"] = np.array([tiles_visited(env) for env in envs])
    for env in envs:
        env.close()
    return result


def play_dreams(dream, config, parameters, episodes, seed):
    """Dream episodes: `episodes` of them per row of parameters (n, P), the same `episodes` dreams
    for every row (common random numbers: initial z and sampling draws repeat across rows).
    Returns {"scores": (n, episodes), "steps": (n, episodes)}."""
    parameters = np.repeat(np.asarray(parameters, np.float32), episodes, axis=0)
    rows = len(parameters)
    dream.reset(rows, seed, copies=rows // episodes)
    scores, steps, alive = np.zeros(rows), np.zeros(rows, np.int64), np.ones(rows, bool)
    while alive.any():
        actions = linear_actions(controller_features(dream.z, dream.h, dream.c, config), parameters)
        reward, terminated, truncated = dream.step(actions)
        scores += reward * alive
        steps += alive
        alive &= ~(terminated | truncated)
    return {"scores": scores.reshape(-1, episodes), "steps": steps.reshape(-1, episodes)}


# -- worker tasks -----------------------------------------------------------------------------

_loaded = {}  # per worker process: the agent of each world model, loaded once


def limit_worker_threads(config):
    """One worker per core shares the cores: give each TensorFlow its share (before TF starts; later
    calls change nothing). Called in worker processes only."""
    import common.tensorflow_settings  # noqa: F401  (first: TensorFlow reads its settings when imported)

    # isort: split
    import tensorflow as tf

    threads = max(1, (os.cpu_count() or 1) // worker_count(config))
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # TensorFlow already started in this process (a reused Ray worker): keep its setting


def score_episodes(config, parameters, seeds, stall_steps=0):
    """Worker task: play_episodes for (parameters (n, P), seeds (n,)); returns (scores, steps)."""
    key = world_model_key(config)
    if key not in _loaded:
        if not _loaded:
            limit_worker_threads(config)
        _loaded.clear()
        _loaded[key] = load_agent(config)
    result = play_episodes(_loaded[key], config, parameters, seeds, stall_steps=stall_steps)
    return result["scores"], result["steps"]

