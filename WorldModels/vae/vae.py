"""ConvVAE: the World Models vision model V.

Encoder: four convolutions (32, 64, 128, 256 filters, kernel 4, stride 2, ReLU) -> 2x2x256 ->
dense mu and logvar of size z_size. Decoder: dense 1024 -> 1x1x1024 -> transposed convolutions
(128 k5, 64 k5, 32 k6 with ReLU, 3 k6 with sigmoid; stride 2) -> 64x64x3 in [0, 1].
Loss, as the original: squared error summed over each image's pixels, plus the KL divergence
floored at kl_tolerance * z_size (free bits: the encoder may spend that much information at no
cost), both averaged over the batch. Frames enter as float32 in [0, 1].
"""

import common.tensorflow_settings  # noqa: F401  (first: TensorFlow reads its settings when imported)

# isort: split
import keras
import tensorflow as tf
from keras import layers

from common.episodes import FRAME_SHAPE
from vae.layers import Conv2DTransposeOf1x1
from vae.sharpness import SharpnessRatio

# -- the math ---------------------------------------------------------------------------------

def kl_divergence(mu, logvar):
    """KL(N(mu, exp(logvar)) || N(0, I)) of each example, summed over z: (batch, z) -> (batch,)."""
    return -0.5 * tf.reduce_sum(1.0 + logvar - tf.square(mu) - tf.exp(logvar), axis=-1)


def floored_kl(mu, logvar, kl_tolerance):
    """Each example's KL, floored at kl_tolerance * z_size as in the original: (batch,)."""
    return tf.maximum(kl_divergence(mu, logvar), kl_tolerance * mu.shape[-1])


def squared_error(frames, reconstructions):
    """Squared error summed over each image's pixels and channels: (batch, H, W, C) -> (batch,)."""
    return tf.reduce_sum(tf.square(frames - reconstructions), axis=[1, 2, 3])


def pixel_mse(frames, reconstructions):
    """Mean squared error per pixel value, over the batch (a scalar; frames in [0, 1])."""
    return tf.reduce_mean(tf.square(frames - reconstructions))


def sample_latent(mu, logvar, noise):
    """Reparameterised sample z = mu + exp(logvar / 2) * noise, noise ~ N(0, I) of mu's shape."""
    return mu + tf.exp(0.5 * logvar) * noise


# -- the networks -----------------------------------------------------------------------------

def build_encoder(z_size):
    """frames (batch, 64, 64, 3) -> [mu, logvar], each (batch, z_size)."""
    frames = keras.Input(FRAME_SHAPE, name="frames")
    hidden = frames
    for filters in (32, 64, 128, 256):
        hidden = layers.Conv2D(filters, 4, strides=2, activation="relu")(hidden)
    hidden = layers.Flatten()(hidden)
    mu = layers.Dense(z_size, name="mu")(hidden)
    logvar = layers.Dense(z_size, name="logvar")(hidden)
    return keras.Model(frames, [mu, logvar], name="encoder")


def build_decoder(z_size):
    """z (batch, z_size) -> frames (batch, 64, 64, 3) in [0, 1]."""
    return keras.Sequential([
        keras.Input((z_size,), name="z"),
        layers.Dense(1024),
        layers.Reshape((1, 1, 1024)),
        Conv2DTransposeOf1x1(128, 5, strides=2, activation="relu"),  # a matrix product: see vae/layers.py
        layers.Conv2DTranspose(64, 5, strides=2, activation="relu"),
        layers.Conv2DTranspose(32, 6, strides=2, activation="relu"),
        layers.Conv2DTranspose(3, 6, strides=2, activation="sigmoid"),
    ], name="decoder")


# -- the model --------------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="WorldModels")
class ConvVAE(keras.Model):
    """The World Models ConvVAE. call(frames) reconstructs from the latent mean.

    encode(frames) -> (mu, logvar); decode(z) -> frames. Validation (test_step) uses the mean,
    so it is deterministic, and also tracks the sharpness ratio.
    """

    TRACKED = ("loss", "reconstruction_loss", "kl_loss", "pixel_mse")  # logged every epoch

    def __init__(self, z_size=32, kl_tolerance=0.5, seed=None, decoder_network=None, **kwargs):
        super().__init__(**kwargs)
        self.z_size, self.kl_tolerance, self.seed = z_size, kl_tolerance, seed
        self.encoder = build_encoder(z_size)
        # A subclass may bring its own decoder (built here only when it does not, so no unused one is saved).
        self.decoder = build_decoder(z_size) if decoder_network is None else decoder_network
        self.seed_generator = keras.random.SeedGenerator(seed)  # saved with the weights: resumes reproducibly
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.TRACKED}
        self.sharpness_tracker = SharpnessRatio(name="sharpness")  # validation only

    def build(self, input_shape=(None, *FRAME_SHAPE)):
        self.encoder.build(input_shape)
        self.decoder.build((None, self.z_size))
        self.built = True

    def encode(self, frames, training=False):
        return self.encoder(frames, training=training)

    def decode(self, z, training=False):
        return self.decoder(z, training=training)

    def call(self, frames, training=False):
        mu, _ = self.encode(frames, training=training)
        return self.decode(mu, training=training)

    @property
    def metrics(self):
        return [*self.trackers.values(), self.sharpness_tracker]

    def compute_losses(self, frames, noise, training=False):
        """Losses for frames with the given latent noise (zeros: reconstruct from the mean)."""
        mu, logvar = self.encode(frames, training=training)
        reconstructions = self.decode(sample_latent(mu, logvar, noise), training=training)
        reconstruction_loss = tf.reduce_mean(squared_error(frames, reconstructions))
        kl_loss = tf.reduce_mean(floored_kl(mu, logvar, self.kl_tolerance))
        return {"loss": reconstruction_loss + kl_loss, "reconstruction_loss": reconstruction_loss,
                "kl_loss": kl_loss, "pixel_mse": pixel_mse(frames, reconstructions)}, reconstructions

    def _track(self, losses):
        """Update the trackers from a dict of losses; return their current values for the logs."""
        for name, tracker in self.trackers.items():
            tracker.update_state(losses[name])
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def train_step(self, frames):
        noise = keras.random.normal((tf.shape(frames)[0], self.z_size), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            losses, _ = self.compute_losses(frames, noise, training=True)
        gradients = tape.gradient(losses["loss"], self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables, strict=True))
        return self._track(losses)

    def test_step(self, frames):
        losses, reconstructions = self.compute_losses(frames, tf.zeros((tf.shape(frames)[0], self.z_size)))
        self.sharpness_tracker.update_state(frames, reconstructions)
        return {**self._track(losses), "sharpness": self.sharpness_tracker.result()}

    def get_config(self):
        return {**super().get_config(), "z_size": self.z_size, "kl_tolerance": self.kl_tolerance, "seed": self.seed}
