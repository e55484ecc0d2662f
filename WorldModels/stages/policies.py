"""Exploration policies for collecting rollouts.

Two kinds:
- agent-driven (AGENT_POLICIES): `original`, the original World Models' and the TF2 port's random
  controller acting through the untrained agent, and `controller`, a trained controller with
  exploration noise acting through its trained world model (the paper's iterative procedure). Both
  play through agent.play_episodes, a batch of episodes in lockstep; exploration_agent(config)
  gives the agent and each episode's controller parameters.
- frame policies: a factory takes a numpy Generator (seeded per episode) and returns
  `act(frame) -> action` for one episode, where frame is the processed 64x64x3 uint8 observation
  and action is CarRacing's float32 (steer, gas, brake). Any picklable `factory(rng) -> act`
  plugs into stages.rollouts.extract.
"""

import functools

import numpy as np

from common.config import with_values
from common.layout import controller_path, world_model_key
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


def pursuit_driver(rng, env, lookahead=6, gain=2.0):
    """A scripted driver that follows the track (pure pursuit on the environment's own state: the
    car's pose and the track's points), for episodes that drive like a good agent: held-out test
    data in bench/exploration_quality.py, not an exploration policy (it reads what an agent cannot).
    Its target speed is drawn per episode (50-90), and its steering is slightly noisy."""
    target_speed = rng.uniform(50.0, 90.0)
    track = np.array([(x, y) for _, _, x, y in env.unwrapped.track])

    def act(frame):
        car = env.unwrapped.car.hull
        position = np.array(car.position)
        nearest = int(np.argmin(np.sum((track - position) ** 2, axis=1)))
        target = track[(nearest + lookahead) % len(track)]
        heading = car.angle + np.pi / 2  # the hull's forward axis is its local +y
        error = np.arctan2(target[1] - position[1], target[0] - position[0]) - heading
        error = (error + np.pi) % (2 * np.pi) - np.pi
        speed = np.hypot(*car.linearVelocity)
        steer = np.clip(-gain * error + 0.05 * rng.standard_normal(), -1.0, 1.0)
        gas = 0.5 if speed < target_speed * (1.0 - min(abs(error), 0.5)) else 0.0
        brake = 0.4 if speed > target_speed * 1.2 else 0.0
        return np.array([steer, gas, brake], np.float32)

    return act


pursuit_driver.reads_env = True
AGENT_POLICIES = ("original", "controller")
# The untrained agent of the original: V with z 32, M with 256 units and 5 mixtures, C reading [z, h]
# with z sampled. Fixed, so that rollouts do not depend on the sizes a later stage trains with.
ORIGINAL_AGENT = {"z_size": 32, "rnn_size": 256, "rnn_num_mixture": 5, "exp_mode": "zh", "state_space": 1,
                  "controller_z": "sample"}


def original_parameters(rng, size, max_scale):
    """One episode's random controller, as the original draws it: standard Cauchy * s, s ~ U(0, max_scale)
    (s drawn first, then the `size` parameters), float32. Heavy tails: most weights are tiny, a few
    large, so the car mostly drives forward and now and then steers hard."""
    scale = rng.uniform(0.0, max_scale)
    return (rng.standard_cauchy(size) * scale).astype(np.float32)


def original_agent_config(config):
    """`config` with the untrained agent's sizes (ORIGINAL_AGENT)."""
    return with_values(config, **ORIGINAL_AGENT)


def random_agent(config):
    """The untrained agent: V (ConvVAE) and M (MDN-RNN) of ORIGINAL_AGENT's sizes, initialised by
    Keras from config.seed, so every worker builds the same one."""
    import keras

    from rnn.rnn import MDNRNN
    from stages.agent import Agent
    from vae.vae import ConvVAE

    agent_config = original_agent_config(config)
    keras.utils.set_random_seed(config.seed)
    vision = ConvVAE(agent_config.z_size, seed=config.seed)
    vision.build()
    rnn = MDNRNN(agent_config.z_size, agent_config.rnn_size, agent_config.rnn_num_mixture, seed=config.seed)
    rnn.build()
    return Agent(vision, rnn, agent_config)


_agents = {}  # per worker process: the agent of the last exploration policy, built or loaded once


def exploration_agent(config):
    """(agent, the config it plays with, parameters(rng) -> one episode's controller parameters,
    action noise) of an agent-driven policy. The agent is built once per worker process (again when
    its files change)."""
    from controller import num_parameters
    from stages.agent import load_agent
    from stages.evaluation import load_for_config

    if config.extract_policy == "original":
        key = ("original", config.seed)
    else:
        key = (world_model_key(config, [controller_path(config)]), config.vision, config.z_size, config.rnn_size,
               config.controller_z)  # what load_agent reads
    if key not in _agents:
        _agents.clear()
        _agents[key] = random_agent(config) if config.extract_policy == "original" else load_agent(config)
    if config.extract_policy == "original":
        agent_config = original_agent_config(config)
        size, scale = num_parameters(agent_config), config.extract_original_scale
        return _agents[key], agent_config, lambda rng: original_parameters(rng, size, scale), 0.0
    parameters = load_for_config(controller_path(config), config)
    return _agents[key], config, lambda rng: parameters, config.extract_action_noise


def make_policy_factory(config):
    """The frame policy chosen by config.extract_policy, as `factory(rng) -> act` (not the agent-driven ones)."""
    factories = {
        "brownian": functools.partial(brownian_policy, dt=config.extract_brownian_dt),
        "white": white_policy,
        "linear": functools.partial(random_linear_policy, max_stdev=config.extract_linear_stdev),
    }
    return factories[config.extract_policy]
