"""MDN-RNN: the World Models memory model M.

An LSTM of rnn_size units reads x_t = [z_t, a_t]; a mixture density head predicts z_{t+1} with,
for each of the z_size dimensions independently, num_mixture Gaussians (mixing log-weights,
means, log standard deviations), as in the original. Optional heads predict the reward r_t and
whether the episode ends (done_t, a logit), which the dream environment needs. Padded steps
(after an episode's end) are masked out of every loss; z is sampled from N(mu, exp(logvar))
afresh for every training batch.

Dropout as Dropout's Dream Land (Wellmer & Kwok) uses it: variational dropout on the latent inputs
and on the hidden state h that enters the LSTM's recurrent product, never on the actions, with one
mask per sequence (fixed over its steps). `dropout` applies it while M trains; the dream passes its
own masks to `step`, a fresh pair for every dream episode (env.DreamBatch, dream_dropout).

Sequence layout (series.npz): at step t the frame gives (mu_t, logvar_t), the agent takes a_t and
receives r_t, and done_t marks the episode's last step. From [z_t, a_t] the model predicts z_{t+1}
(for t + 1 < length), r_t and done_t (for t < length).
"""

import math

import common.tensorflow_settings  # noqa: F401  (first: TensorFlow reads its settings when imported)

# isort: split
import keras
import numpy as np
import tensorflow as tf
from keras import layers

from common.episodes import ACTION_SIZE

LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


# -- the math ---------------------------------------------------------------------------------

def split_mixture(output, z_size, num_mixture):
    """MDN head output (..., z_size * num_mixture * 3) -> (log_weights, means, log_sigmas), each
    (..., z_size, num_mixture); log_weights are normalised (log-softmax over the mixture)."""
    output = tf.reshape(output, tf.concat([tf.shape(output)[:-1], [z_size, num_mixture * 3]], axis=0))
    logits, means, log_sigmas = tf.split(output, 3, axis=-1)
    return tf.nn.log_softmax(logits, axis=-1), means, log_sigmas


def mixture_nll(log_weights, means, log_sigmas, target):
    """-log sum_k w_k N(target; mean_k, sigma_k) for each dimension: target (..., z) -> (..., z)."""
    standardized = (target[..., None] - means) * tf.exp(-log_sigmas)
    log_densities = -0.5 * tf.square(standardized) - log_sigmas - LOG_SQRT_2PI
    return -tf.reduce_logsumexp(log_weights + log_densities, axis=-1)


def sample_mixture(log_weights, means, log_sigmas, temperature, rng):
    """Sample z from the mixture with temperature tau, as the original: the mixing weights become
    softmax(log_weights / tau) and the variances are scaled by tau. As tau -> 0 it returns the
    mean of each dimension's most likely component. numpy in, numpy out: (..., z, K) -> (..., z)."""
    log_weights, means, log_sigmas = (np.asarray(a, dtype=np.float64) for a in (log_weights, means, log_sigmas))
    if temperature <= 1e-6:
        chosen = np.argmax(log_weights, axis=-1)[..., None]
        return np.take_along_axis(means, chosen, axis=-1)[..., 0]
    scaled = log_weights / temperature
    weights = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    cumulative = np.cumsum(weights, axis=-1)
    draws = rng.uniform(size=cumulative.shape[:-1] + (1,))
    chosen = np.minimum((draws > cumulative).sum(axis=-1, keepdims=True), weights.shape[-1] - 1)
    mean = np.take_along_axis(means, chosen, axis=-1)[..., 0]
    sigma = np.exp(np.take_along_axis(log_sigmas, chosen, axis=-1)[..., 0])
    return mean + sigma * np.sqrt(temperature) * rng.standard_normal(mean.shape)


def mixture_mean(log_weights, means):
    """The mixture's expected value per dimension: (..., z, K) -> (..., z)."""
    return tf.reduce_sum(tf.exp(log_weights) * means, axis=-1)


def dropout_masks(uniform_z, uniform_h, rate):
    """Inverted-dropout masks from uniform draws in [0, 1): (z_mask, h_mask), each 0 where the draw is
    below `rate` and 1 / (1 - rate) elsewhere, so a masked input keeps its expected value. numpy."""
    keep = 1.0 / (1.0 - rate)
    return tuple(np.where(np.asarray(draws) < rate, 0.0, keep).astype(np.float32) for draws in (uniform_z, uniform_h))


def masked_lstm(cell, x, state, h_mask):
    """Run an LSTM cell over x (batch, time, features) from state [h, c], with h multiplied by h_mask
    (batch, units) before every recurrent product (the same mask at every step: variational recurrent
    dropout). Returns (hidden (batch, time, units), h, c); the hidden outputs are unmasked."""
    def advance(carry, x_t):
        h, c = carry
        _, (h, c) = cell(x_t, [h * h_mask, c])
        return h, c

    hidden, cells = tf.scan(advance, tf.transpose(x, [1, 0, 2]), initializer=(state[0], state[1]))
    return tf.transpose(hidden, [1, 0, 2]), hidden[-1], cells[-1]


def masked_mean(values, mask):
    """Mean of `values` over the steps where mask is 1 (values (batch, time[, z]), mask (batch, time))."""
    mask = tf.cast(mask, values.dtype)
    if values.shape.rank == 3:
        mask = mask[..., None] * tf.ones_like(values)
    return tf.math.divide_no_nan(tf.reduce_sum(values * mask), tf.reduce_sum(mask))


def weighted_done_loss(done, done_logits, true_weight):
    """Binary cross-entropy of the done logits, each done=True step weighted by true_weight: (batch, time)."""
    done = tf.cast(done, tf.float32)
    cross_entropy = tf.nn.sigmoid_cross_entropy_with_logits(done, done_logits)
    return cross_entropy * (1.0 + (true_weight - 1.0) * done)


@keras.saving.register_keras_serializable(package="WorldModels")
class DecayedLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """The original's schedule: (initial - minimum) * decay_rate ** step + minimum."""

    def __init__(self, initial, decay_rate, minimum):
        self.initial, self.decay_rate, self.minimum = initial, decay_rate, minimum

    def __call__(self, step):
        return (self.initial - self.minimum) * self.decay_rate ** tf.cast(step, tf.float32) + self.minimum

    def get_config(self):
        return {"initial": self.initial, "decay_rate": self.decay_rate, "minimum": self.minimum}


# -- the model --------------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="WorldModels")
class MDNRNN(keras.Model):
    """The MDN-RNN. call([z, a], state) runs whole sequences; step(z, a, state) one step.

    Both return a dict: log_weights, means, log_sigmas (batch[, time], z, K), reward and
    done_logit (batch[, time]) when their heads exist, and state = [h, c].
    Training batches are dicts of series arrays (see series.py and data.sequence_dataset).
    masks = (z_mask (batch, z_size), h_mask (batch, rnn_size)) applies dropout masks (dropout_masks);
    in training with dropout > 0, call draws a pair per sequence itself.
    """

    TRACKED = ("loss", "z_nll", "reward_loss", "done_loss")

    def __init__(self, z_size=32, rnn_size=256, num_mixture=5, predict_reward=False, predict_done=False,
                 done_true_weight=1.0, seed=None, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.z_size, self.rnn_size, self.num_mixture = z_size, rnn_size, num_mixture
        self.predict_reward, self.predict_done = predict_reward, predict_done
        self.done_true_weight, self.seed, self.dropout = done_true_weight, seed, dropout
        self.lstm = layers.LSTM(rnn_size, return_sequences=True, return_state=True, name="lstm")
        self.mixture_head = layers.Dense(z_size * num_mixture * 3, name="mixture")
        self.reward_head = layers.Dense(1, name="reward") if predict_reward else None
        self.done_head = layers.Dense(1, name="done") if predict_done else None
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.TRACKED}

    def build(self, input_shape=None):
        self.lstm.build((None, None, self.z_size + ACTION_SIZE))
        for head in (self.mixture_head, self.reward_head, self.done_head):
            if head is not None:
                head.build((None, self.rnn_size))
        self.built = True

    def initial_state(self, batch_size):
        return [tf.zeros((batch_size, self.rnn_size)), tf.zeros((batch_size, self.rnn_size))]

    def _heads(self, hidden):
        log_weights, means, log_sigmas = split_mixture(self.mixture_head(hidden), self.z_size, self.num_mixture)
        outputs = {"log_weights": log_weights, "means": means, "log_sigmas": log_sigmas}
        if self.reward_head is not None:
            outputs["reward"] = self.reward_head(hidden)[..., 0]
        if self.done_head is not None:
            outputs["done_logit"] = self.done_head(hidden)[..., 0]
        return outputs

    def training_masks(self, batch_size):
        """A fresh (z_mask, h_mask) per sequence of a training batch, at the model's dropout rate."""
        ones = [tf.ones((batch_size, size)) for size in (self.z_size, self.rnn_size)]
        return tuple(keras.random.dropout(mask, self.dropout, seed=self.seed_generator) for mask in ones)

    def call(self, inputs, state=None, training=False, masks=None):
        z, action = inputs
        z, action = tf.cast(z, tf.float32), tf.cast(action, tf.float32)
        if masks is None and training and self.dropout > 0.0:
            masks = self.training_masks(tf.shape(z)[0])
        if masks is None:
            hidden, h, c = self.lstm(tf.concat([z, action], axis=-1), initial_state=state, training=training)
        else:
            z_mask, h_mask = masks
            state = state if state is not None else self.initial_state(tf.shape(z)[0])
            hidden, h, c = masked_lstm(self.lstm.cell, tf.concat([z * z_mask[:, None], action], axis=-1), state,
                                       h_mask)
        return {**self._heads(hidden), "state": [h, c]}

    def step(self, z, action, state, masks=None):
        """One step for a batch: z (batch, z_size), action (batch, 3), state [h, c] -> outputs dict;
        masks (z_mask, h_mask) as in call (the dream's dropout)."""
        z, (h, c) = tf.cast(z, tf.float32), state
        if masks is not None:
            z, h = z * masks[0], h * masks[1]
        hidden, (h, c) = self.lstm.cell(tf.concat([z, tf.cast(action, tf.float32)], axis=-1), [h, c])
        return {**self._heads(hidden), "state": [h, c]}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def compute_losses(self, batch, z, training=False):
        """Losses of a batch of windows of W steps (dict of action, reward, done and mask, the valid
        steps, each (batch, W, ...)) given their latents z (batch, W, z_size). Inputs are steps
        0..W-2; z targets are steps 1..W-1 (valid where mask[:, 1:]); reward and done targets are
        the input steps' own (valid where mask[:, :-1])."""
        outputs = self([z[:, :-1], batch["action"][:, :-1]], training=training)
        input_mask, target_mask = batch["mask"][:, :-1], batch["mask"][:, 1:]
        nll = mixture_nll(outputs["log_weights"], outputs["means"], outputs["log_sigmas"], z[:, 1:])
        losses = {"z_nll": masked_mean(nll, target_mask)}
        loss = losses["z_nll"]
        if self.reward_head is not None:
            reward = tf.cast(batch["reward"][:, :-1], tf.float32)
            losses["reward_loss"] = masked_mean(tf.square(outputs["reward"] - reward), input_mask)
            loss += losses["reward_loss"]
        if self.done_head is not None:
            done_loss = weighted_done_loss(batch["done"][:, :-1], outputs["done_logit"], self.done_true_weight)
            losses["done_loss"] = masked_mean(done_loss, input_mask)
            loss += losses["done_loss"]
        return {"loss": loss, **losses}

    def _track(self, losses):
        for name, value in losses.items():
            self.trackers[name].update_state(value)
        return {name: self.trackers[name].result() for name in losses}

    def train_step(self, batch):
        mu, logvar = tf.cast(batch["mu"], tf.float32), tf.cast(batch["logvar"], tf.float32)
        z = mu + tf.exp(0.5 * logvar) * keras.random.normal(tf.shape(mu), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            losses = self.compute_losses(batch, z, training=True)
        gradients = tape.gradient(losses["loss"], self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables, strict=True))
        return self._track(losses)

    def test_step(self, batch):
        # Validation batches carry their latents, sampled once (data.validation_windows): repeatable.
        return self._track(self.compute_losses(batch, tf.cast(batch["z"], tf.float32)))

    def get_config(self):
        return {**super().get_config(), "z_size": self.z_size, "rnn_size": self.rnn_size,
                "num_mixture": self.num_mixture, "predict_reward": self.predict_reward,
                "predict_done": self.predict_done, "done_true_weight": self.done_true_weight, "seed": self.seed,
                "dropout": self.dropout}


def step_function(model, masked=False):
    """model.step compiled once for any batch size, for the agent and the dream:
    (z (n, z_size), action (n, 3), h, c (n, rnn_size)) -> the step's outputs with h and c in place of
    state, plus "mean", the mixture's expected next latent (n, z_size). masked: the function takes
    two more arguments, z_mask (n, z_size) and h_mask (n, rnn_size), the dream's dropout masks."""
    size = model.rnn_size
    signature = [tf.TensorSpec([None, model.z_size]), tf.TensorSpec([None, ACTION_SIZE]),
                 tf.TensorSpec([None, size]), tf.TensorSpec([None, size])]

    def outputs_of(z, action, h, c, masks):
        outputs = model.step(z, action, [h, c], masks)
        h, c = outputs.pop("state")
        return {**outputs, "h": h, "c": c, "mean": mixture_mean(outputs["log_weights"], outputs["means"])}

    if masked:
        masks = [tf.TensorSpec([None, model.z_size]), tf.TensorSpec([None, size])]
        return tf.function(lambda z, action, h, c, z_mask, h_mask: outputs_of(z, action, h, c, (z_mask, h_mask)),
                           input_signature=[*signature, *masks])
    return tf.function(lambda z, action, h, c: outputs_of(z, action, h, c, None), input_signature=signature)
