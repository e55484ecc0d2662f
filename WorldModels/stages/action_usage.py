"""How much M uses the actions, measured two ways (memory_metrics.json, "action_usage"; the report).

A dream only teaches driving if M's predictions move with the controller's actions. A world model
whose M ignores them pays a controller for whatever it does, and CMA-ES then finds the cheapest
behaviour the reward head likes (in our dreams: brake and stand still).

    shuffled_actions_losses(model, validation, seed)   M's held-out losses with each window's actions
                                                       shuffled in time: real minus shuffled is what
                                                       the actions are worth to M's predictions
    held_action_responses(config, vision_model, rnn)   from the same real states, each probe action
                                                       held for PROBE_STEPS steps in the real
                                                       environment and in M's dream: how far the
                                                       frame moves from coasting's, and the reward
"""

import numpy as np
import tensorflow as tf

from common.config import with_values
from env import make_env
from rnn.rnn import sample_mixture, step_function
from stages.agent import episode_seeds
from stages.vision_metrics import as_uint8, latent_means

# Held from the branch point, in CarRacing's action space (steer, gas, brake); coasting is the reference.
PROBE_ACTIONS = {"steer_left": (-1.0, 0.0, 0.0), "steer_right": (1.0, 0.0, 0.0), "gas": (0.0, 1.0, 0.0),
                 "brake": (0.0, 0.0, 0.8), "coast": (0.0, 0.0, 0.0)}
PREFIX_ACTION = (0.0, 0.3, 0.0)  # gentle gas up to the branch point, so the car is rolling there
PREFIX_STEPS = 60  # CarRacing zooms in over its first ~50 frames; the branch comes after
PROBE_STEPS = 20


def shuffled_in_time(action, mask, seed):
    """Each window's actions (W, T, 3) at its valid steps (mask (W, T)) put in a random order of their
    own; padded steps stay as they are. Same multiset per window, no link to the frames left."""
    rng = np.random.default_rng(seed)
    shuffled = np.array(action, copy=True)
    for window, valid in enumerate(np.asarray(mask, bool)):
        steps = np.flatnonzero(valid)
        shuffled[window, steps] = action[window, rng.permutation(steps)]
    return shuffled


def shuffled_actions_losses(model, validation, batch_size, seed):
    """M's held-out losses (z_nll, and reward_loss, done_loss where it has those heads) on the
    validation windows (data.validation_windows) with real and with time-shuffled actions:
    {"real": {...}, "shuffled": {...}}. Same latents, same targets: only the actions' order differs."""
    shuffled = {**validation, "action": shuffled_in_time(validation["action"], validation["mask"], seed)}
    losses_of = tf.function(lambda batch: model.compute_losses(batch, batch["z"]))

    def mean_losses(windows):  # as model.evaluate reports them: the mean of the batches' losses
        batches = [losses_of(batch) for batch in tf.data.Dataset.from_tensor_slices(windows).batch(batch_size)]
        return {key: float(np.mean([batch[key] for batch in batches])) for key in batches[0]}

    return {"real": mean_losses(validation), "shuffled": mean_losses(shuffled)}


def play_probes(config, seeds):
    """For each seed (one start state), the real environment driven PREFIX_STEPS steps with PREFIX_ACTION,
    then each probe action held PROBE_STEPS steps, every branch replayed from the seed (CarRacing is
    deterministic given its seed and actions). Returns prefix frames uint8 (starts, PREFIX_STEPS + 1, 64,
    64, 3), final frames (starts, actions, 64, 64, 3) and the rewards summed over the held steps
    (starts, actions)."""
    config = with_values(config, max_frames=max(config.max_frames, PREFIX_STEPS + PROBE_STEPS))
    prefixes, finals, rewards = [], [], []
    for seed in seeds:
        row_frames, row_rewards = [], []
        for action in PROBE_ACTIONS.values():
            env = make_env(config, seed=seed, full_episode=True)
            frames = [env.reset()[0]]
            for _ in range(PREFIX_STEPS):
                frames.append(env.step(np.array(PREFIX_ACTION, np.float32))[0])
            total = 0.0
            for _ in range(PROBE_STEPS):
                frame, reward, terminated, truncated, _ = env.step(np.array(action, np.float32))
                total += reward
                if terminated or truncated:  # off the playfield: the last frame stands
                    break
            env.close()
            row_frames.append(frame)
            row_rewards.append(total)
        prefixes.append(np.stack(frames))
        finals.append(np.stack(row_frames))
        rewards.append(row_rewards)
    return np.stack(prefixes), np.stack(finals), np.array(rewards)


def dream_probes(vision_model, rnn, prefixes):
    """The same probes in M's dream: M reads the prefix's real latents and actions, then each probe action
    is held PROBE_STEPS steps from the branch point's latent, z following M's likeliest next latent
    (temperature 0, so the response is M's, not its sampling noise's). Returns the final latents
    (starts, actions, z_size) and the predicted rewards summed over the held steps (starts, actions)."""
    starts, count = len(prefixes), len(PROBE_ACTIONS)
    mu = latent_means(vision_model, prefixes.reshape(-1, *prefixes.shape[2:])).reshape(starts, PREFIX_STEPS + 1, -1)
    prefix_actions = np.tile(np.array(PREFIX_ACTION, np.float32), (starts, PREFIX_STEPS, 1))
    state = rnn([mu[:, :-1], prefix_actions])["state"]
    step = step_function(rnn)
    z = np.repeat(mu[:, -1], count, axis=0)  # row s * count + a: start s, probe action a
    h, c = (np.repeat(part.numpy(), count, axis=0) for part in state)
    actions = np.tile(np.array(list(PROBE_ACTIONS.values()), np.float32), (starts, 1))
    rewards = np.zeros(len(z))
    for _ in range(PROBE_STEPS):
        outputs = step(z, actions, h, c)
        if "reward" in outputs:
            rewards += outputs["reward"].numpy()
        z = sample_mixture(outputs["log_weights"].numpy(), outputs["means"].numpy(), outputs["log_sigmas"].numpy(),
                           0.0, None).astype(np.float32)
        h, c = outputs["h"].numpy(), outputs["c"].numpy()
    return z.reshape(starts, count, -1), rewards.reshape(starts, count)


def frame_change(frames, reference):
    """Mean squared pixel difference ([0, 1] scale) of frames (..., 64, 64, 3) from a reference of the same shape."""
    return float(np.mean(np.square(frames.astype(np.float32) / 255.0 - reference.astype(np.float32) / 255.0)))


def held_action_responses(config, vision_model, rnn):
    """Real vs dream response to each probe action held PROBE_STEPS steps from action_probe_starts start
    states (their own seeds, never a training, test or validation episode's). Per action: "real", the
    pixel change of the final frame from coasting's; "real_reconstructed", the same between V's
    reconstructions of those frames (the part of the change V can show); "dream", the change between M's
    decoded final latents; "real_reward" and "dream_reward", the reward over the held steps (the dream's
    from M's reward head, 0 without one). Means over the starts."""
    seeds = episode_seeds(config.seed, "probe", 0, config.action_probe_starts)
    prefixes, finals, real_rewards = play_probes(config, seeds)
    dream_z, dream_rewards = dream_probes(vision_model, rnn, prefixes)
    starts, count = finals.shape[:2]
    flat = finals.reshape(-1, *finals.shape[2:])
    reconstructed = as_uint8(vision_model.decode(latent_means(vision_model, flat))).reshape(finals.shape)
    dreamed = as_uint8(vision_model.decode(dream_z.reshape(starts * count, -1))).reshape(finals.shape)
    coast = list(PROBE_ACTIONS).index("coast")
    responses = {}
    for index, name in enumerate(PROBE_ACTIONS):
        responses[name] = {"real": frame_change(finals[:, index], finals[:, coast]),
                           "real_reconstructed": frame_change(reconstructed[:, index], reconstructed[:, coast]),
                           "dream": frame_change(dreamed[:, index], dreamed[:, coast]),
                           "real_reward": float(real_rewards[:, index].mean()),
                           "dream_reward": float(dream_rewards[:, index].mean())}
    return {"starts": len(seeds), "prefix_steps": PREFIX_STEPS, "held_steps": PROBE_STEPS, "actions": responses}


def action_usage(config, vision_model, rnn, validation):
    """memory_metrics.json's "action_usage": the held-out losses with real and shuffled actions (and
    z_nll_gain, shuffled minus real, nats per latent dimension: what the actions tell M) and, with
    action_probe_starts > 0, held_action_responses."""
    losses = shuffled_actions_losses(rnn, validation, config.rnn_batch_size, config.seed)
    usage = {"losses": losses, "z_nll_gain": losses["shuffled"]["z_nll"] - losses["real"]["z_nll"]}
    if config.action_probe_starts:
        usage["responses"] = held_action_responses(config, vision_model, rnn)
    return usage
