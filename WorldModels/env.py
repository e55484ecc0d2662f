"""The CarRacing environment as the world model sees it: 64x64 uint8 frames, headless, seeded.

Two simulators step it (the config's env_backend): gymnasium's CarRacing-v3, the judge of every
published score, and envpool's C++ port of it (about 10x faster a step; bench/env_equivalence.py
measures how far the two agree)."""

import os

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # keep pygame's banner out of logs

import gymnasium as gym
import numpy as np
from PIL import Image

from common.errors import UserFacingError

FRAME_SIZE = 64
DASHBOARD_ROW = 84  # rows 84..95 of the 96x96 render hold the dashboard, which is cut off
ACTION_LOW = np.array([-1.0, 0.0, 0.0], dtype=np.float32)  # steer, gas, brake
ACTION_HIGH = np.array([1.0, 1.0, 1.0], dtype=np.float32)
STEP_REWARD = -0.1  # CarRacing's reward for a step without a new tile (a new tile adds 1000 / tiles)
OFF_PLAYFIELD_REWARD = -100.0  # the step that leaves the playfield, which ends the episode
ENVPOOL_SEEDS = 2**31 - 1  # envpool seeds its generator with a C int
MAX_TRACK_DRAWS = 2000  # fixed_track_tiles: about 2% of tracks have 289 tiles, 0.1% those at the tails


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
    With `fixed_track_tiles` N > 0, a reset draws tracks from the seed's stream until one has exactly
    N tiles (Dropout's Dream Land's CarRacingFixedN: 289), so a tile always pays 1000 / N.
    """

    def __init__(self, env, full_episode=False, seed=None, fixed_track_tiles=0):
        super().__init__(env)
        self.observation_space = gym.spaces.Box(0, 255, (FRAME_SIZE, FRAME_SIZE, 3), np.uint8)
        self.full_episode, self.fixed_track_tiles = full_episode, fixed_track_tiles
        self._first_seed = seed

    def reset(self, *, seed=None, options=None):
        if seed is None:
            seed, self._first_seed = self._first_seed, None
        frame, info = self.env.reset(seed=seed, options=options)
        for _ in range(MAX_TRACK_DRAWS):
            if not self.fixed_track_tiles or len(self.env.unwrapped.track) == self.fixed_track_tiles:
                return process_frame(frame), info
            frame, info = self.env.reset(options=options)  # the next track of the same stream
        raise UserFacingError(f"fixed_track_tiles={self.fixed_track_tiles}: no such track in {MAX_TRACK_DRAWS} draws "
                              "(CarRacing's tracks have about 220 to 370 tiles, most near 290)")

    def step(self, action):
        frame, reward, terminated, truncated, info = self.env.step(action)
        if self.full_episode and info.get("lap_finished"):
            terminated = False
        return process_frame(frame), reward, terminated, truncated, info


class EnvpoolCarRacing(gym.Env):
    """envpool's CarRacing-v3 (one C++ environment) behind CarRacingFrames' interface: 64x64 frames.

    What differs from gymnasium's, by construction (bench/env_equivalence.py measures the rest):
    - its own track generator: a seed gives another track than gymnasium's for the same seed;
    - a finished lap always ends the episode (no full_episode);
    - it reports no car or track state, so the number of tiles and of tiles visited are read off the
      rewards (each new tile pays 1000 / tiles), and speed and on_road are not known (None).
    """

    metadata = {"render_modes": []}

    def __init__(self, max_frames, seed=None):
        try:
            import envpool
        except ImportError:
            raise UserFacingError("env_backend=envpool needs the envpool package (Linux, Python >= 3.11): "
                                  "pip install envpool") from None
        self._make = lambda seed: envpool.make("CarRacing-v3", env_type="gymnasium", num_envs=1,
                                               seed=int(seed) % ENVPOOL_SEEDS, max_episode_steps=max_frames)
        self.observation_space = gym.spaces.Box(0, 255, (FRAME_SIZE, FRAME_SIZE, 3), np.uint8)
        self.action_space = gym.spaces.Box(ACTION_LOW, ACTION_HIGH, dtype=np.float32)
        self._pool, self._first_seed, self.tile_rewards = None, seed, []

    def reset(self, *, seed=None, options=None):
        if seed is None:
            seed, self._first_seed = self._first_seed, None
        if seed is not None or self._pool is None:  # without a seed, the pool's generator draws the next track
            self._pool = self._make(np.random.SeedSequence(seed).generate_state(1)[0] if seed is None else seed)
        frames, _ = self._pool.reset()
        self.tile_rewards = []
        return process_frame(frames[0]), {}

    def step(self, action):
        # clipped: the C++ car takes no action outside the box (gymnasium's would drive with it)
        action = np.clip(np.asarray(action, np.float32), ACTION_LOW, ACTION_HIGH)[None]
        frames, reward, terminated, truncated, _ = self._pool.step(action)
        reward = float(reward[0])
        if reward != OFF_PLAYFIELD_REWARD and reward - STEP_REWARD > 1e-3:
            self.tile_rewards.append(reward - STEP_REWARD)
        return process_frame(frames[0]), reward, bool(terminated[0]), bool(truncated[0]), {}

    def tile_counts(self):
        """(tiles of the track, tiles visited) read off this episode's rewards: the smallest tile reward
        is one tile's, 1000 / tiles; (0, 0) before the first tile."""
        return tile_counts(self.tile_rewards)


def tile_counts(tile_rewards):
    """(tiles of the track, tiles visited) from the positive parts of an episode's rewards (reward + 0.1
    of the steps that reached new tiles): one tile pays 1000 / tiles, a step can reach several."""
    if not tile_rewards:
        return 0, 0
    one_tile = min(tile_rewards)
    return round(1000.0 / one_tile), round(sum(tile_rewards) / one_tile)


def make_env(config, seed=None, full_episode=False):
    """CarRacing (continuous actions) with 64x64 frames and episodes capped at config.max_frames, from
    the config's env_backend (envpool ends an episode at a finished lap, whatever full_episode says).

    `seed` makes the first episode (track and action_space samples) reproducible; later resets
    without a seed continue the same random stream. Needs no display.
    """
    if config.env_backend == "envpool":
        if config.fixed_track_tiles:
            raise UserFacingError("fixed_track_tiles needs env_backend=gymnasium (envpool's track is not readable)")
        env = EnvpoolCarRacing(config.max_frames, seed=seed)
    else:
        env = CarRacingFrames(gym.make(config.env_name, continuous=True, max_episode_steps=config.max_frames),
                              full_episode=full_episode, seed=seed, fixed_track_tiles=config.fixed_track_tiles)
    if seed is not None:
        env.action_space.seed(seed)
    return env


def track_tiles(env):
    """Number of tiles of the current track (the `N` of an episode file)."""
    return env.tile_counts()[0] if isinstance(env, EnvpoolCarRacing) else len(env.unwrapped.track)


def tiles_visited(env):
    """Number of distinct track tiles the car has driven over in the current episode."""
    return env.tile_counts()[1] if isinstance(env, EnvpoolCarRacing) else env.unwrapped.tile_visited_count


def driving_state(env):
    """(speed, on_road) of the car now: the hull's speed in Box2D units (what the dashboard's bar shows;
    ~100 is fast) and whether any wheel touches a road tile. Recorded per step in episode files; None
    where the simulator does not report them (envpool)."""
    if isinstance(env, EnvpoolCarRacing):
        return None
    car = env.unwrapped.car
    velocity = car.hull.linearVelocity
    return float(np.hypot(velocity[0], velocity[1])), any(wheel.tiles for wheel in car.wheels)


# -- the dream: the MDN-RNN as the environment ------------------------------------------------

class SharedDraws:
    """Stands in for a numpy Generator (uniform, standard_normal) whose draws for `rows` rows repeat
    over `copies` blocks: rows b*k + j of every block b get the same numbers, so every candidate of
    a generation meets the same dream episodes (common random numbers)."""

    def __init__(self, rng, copies):
        self.rng, self.copies = rng, copies

    def _repeat(self, draw, shape):
        block = draw((shape[0] // self.copies, *shape[1:]))
        return np.tile(block, (self.copies,) + (1,) * (len(shape) - 1))

    def uniform(self, size):
        return self._repeat(lambda shape: self.rng.uniform(size=shape), size)

    def standard_normal(self, shape):
        return self._repeat(self.rng.standard_normal, shape)


class DreamBatch:
    """A batch of dream episodes stepped together by a trained MDN-RNN (the controller's training ground).

    reset(count, seed) starts `count` episodes from latents drawn from initial_z (the first frames of
    the training episodes: {"mu": [...], "logvar": [...]}); step(actions (count, 3)) samples z_{t+1}
    from the mixture at temperature rnn_temperature and returns (reward, terminated, truncated), each
    (count,): the predicted reward (0 without a reward head), done when the done head's probability
    passes 1/2, truncated after dream_max_frames steps (0: max_frames). The state is in .z, .h, .c.
    With dream_dropout > 0, every dream episode gets its own dropout masks on M's latent input and
    hidden state (.masks, drawn at reset and fixed until the next): Dropout's Dream Land's way of
    making one world model many, so a controller cannot exploit one model's quirks.
    """

    def __init__(self, rnn, initial_z, config):
        from rnn.rnn import (  # here: extract.py's workers need no TensorFlow
            dropout_masks,
            sample_mixture,
            step_function,
        )

        self.dropout = config.dream_dropout
        self.rnn, self.sample_mixture, self.dropout_masks = rnn, sample_mixture, dropout_masks
        self.rnn_step = step_function(rnn, masked=self.dropout > 0.0)
        self.initial_mu = np.asarray(initial_z["mu"], np.float32)
        self.initial_logvar = np.asarray(initial_z["logvar"], np.float32)
        self.temperature, self.max_frames = config.rnn_temperature, config.dream_max_frames or config.max_frames

    def reset(self, count, seed, copies=1):
        self.draws = SharedDraws(np.random.default_rng(seed), copies)
        picks = np.tile(self.draws.rng.integers(len(self.initial_mu), size=count // copies), copies)
        noise = self.draws.standard_normal((count, self.initial_mu.shape[1]))
        self.z = (self.initial_mu[picks] + np.exp(0.5 * self.initial_logvar[picks]) * noise).astype(np.float32)
        self.h = np.zeros((count, self.rnn.rnn_size), np.float32)
        self.c = np.zeros_like(self.h)
        self.masks = None
        if self.dropout > 0.0:  # drawn after the start, so dream_dropout=0 keeps the dreams it had before
            self.masks = self.dropout_masks(self.draws.uniform((count, self.z.shape[1])),
                                            self.draws.uniform((count, self.h.shape[1])), self.dropout)
        self.steps = 0
        return self.z

    def step(self, actions):
        masks = () if self.masks is None else self.masks
        outputs = self.rnn_step(self.z, np.asarray(actions, np.float32), self.h, self.c, *masks)
        self.z = self.sample_mixture(outputs["log_weights"].numpy(), outputs["means"].numpy(),
                                     outputs["log_sigmas"].numpy(), self.temperature, self.draws).astype(np.float32)
        self.h, self.c = outputs["h"].numpy(), outputs["c"].numpy()
        self.steps += 1
        count = len(self.z)
        reward = outputs["reward"].numpy().astype(np.float64) if "reward" in outputs else np.zeros(count)
        terminated = outputs["done_logit"].numpy() > 0.0 if "done_logit" in outputs else np.zeros(count, bool)
        return reward, terminated, np.full(count, self.steps >= self.max_frames)


class DreamEnv(gym.Env):
    """One dream episode as a gymnasium Env: observations are the latent z (float32, z_size),
    actions CarRacing's. info holds the RNN state h and c (for a controller reading [z, h])."""

    metadata = {"render_modes": []}

    def __init__(self, rnn, initial_z, config):
        self.dream = DreamBatch(rnn, initial_z, config)
        size = self.dream.initial_mu.shape[1]
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (size,), np.float32)
        self.action_space = gym.spaces.Box(ACTION_LOW, ACTION_HIGH, dtype=np.float32)

    def _info(self):
        return {"h": self.dream.h[0], "c": self.dream.c[0]}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        z = self.dream.reset(1, int(self.np_random.integers(2**32)))
        return z[0], self._info()

    def step(self, action):
        reward, terminated, truncated = self.dream.step(np.asarray(action, np.float32)[None])
        return self.dream.z[0], float(reward[0]), bool(terminated[0]), bool(truncated[0]), self._info()
