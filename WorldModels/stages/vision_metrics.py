"""How vision models are judged: reconstruction MSE, SSIM, sharpness and diversity on held-out
frames, and what the latent code knows about driving.

Sharpness is the variance of the Laplacian (an edge detector) of the reconstructions divided by
that of the real frames: 1.0 is as sharp as the real frames, a blurry reconstruction scores below.
The driving probe fits a linear map from z (the encoder's mean) to the car's speed and to "on the
road" on training frames and scores it on held-out ones: R^2 of speed, accuracy of on-road
(beside the accuracy of always guessing the training frames' majority).
"""

import common.tensorflow_settings  # noqa: F401  (first: TensorFlow reads its settings when imported)

# isort: split
import keras
import numpy as np
import tensorflow as tf

# 3x3 Laplacian on the grayscale image
LAPLACIAN = tf.constant([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])[:, :, None, None]


def laplacian_variance(images):
    """Variance of the Laplacian of each image: float (batch, H, W, 3) in [0, 1] -> (batch,)."""
    gray = tf.image.rgb_to_grayscale(tf.convert_to_tensor(images, tf.float32))
    edges = tf.nn.conv2d(gray, LAPLACIAN, strides=1, padding="VALID")
    return tf.math.reduce_variance(edges, axis=[1, 2, 3])


def sharpness_ratio(frames, reconstructions):
    """mean Laplacian variance of reconstructions / that of the real frames (a scalar)."""
    return tf.reduce_mean(laplacian_variance(reconstructions)) / tf.reduce_mean(laplacian_variance(frames))


class SharpnessRatio(keras.metrics.Metric):
    """sharpness_ratio accumulated over batches (a ratio of sums, so batch sizes may differ)."""

    def __init__(self, name="sharpness", **kwargs):
        super().__init__(name=name, **kwargs)
        self.reconstruction_sum = self.add_variable(shape=(), initializer="zeros", name="reconstruction_sum")
        self.frame_sum = self.add_variable(shape=(), initializer="zeros", name="frame_sum")

    def update_state(self, frames, reconstructions):
        self.reconstruction_sum.assign_add(tf.reduce_sum(laplacian_variance(reconstructions)))
        self.frame_sum.assign_add(tf.reduce_sum(laplacian_variance(frames)))

    def result(self):
        return tf.math.divide_no_nan(self.reconstruction_sum, self.frame_sum)


def evaluate_reconstructions(model, frames, batch_size=100):
    """MSE (per pixel, frames in [0, 1]), SSIM and sharpness of `model`'s reconstructions.

    model: a vision model whose call(frames) reconstructs from the latent mean.
    frames: uint8 (N, 64, 64, 3). Returns a dict of floats and the frame count.
    """
    squared_error, ssim, sharpness, reconstructed = 0.0, 0.0, SharpnessRatio(), []
    for start in range(0, len(frames), batch_size):
        batch = tf.convert_to_tensor(frames[start:start + batch_size], tf.float32) / 255.0
        reconstructions = model(batch, training=False)
        squared_error += float(tf.reduce_sum(tf.reduce_mean(tf.square(batch - reconstructions), axis=[1, 2, 3])))
        ssim += float(tf.reduce_sum(tf.image.ssim(batch, reconstructions, max_val=1.0)))
        sharpness.update_state(batch, reconstructions)
        reconstructed.append(np.asarray(reconstructions))
    count = len(frames)
    return {"mse": squared_error / count, "ssim": ssim / count, "sharpness": float(sharpness.result()),
            "diversity": diversity_ratio(np.asarray(frames, np.float32) / 255.0, np.concatenate(reconstructed)),
            "frames": int(count)}


def diversity_ratio(frames, images):
    """How much `images` differ from one another, against the frames: the variance of each pixel across
    the images, averaged over pixels, over the same for the frames. A collapsed model, which draws one
    picture whatever its input, scores near 0; reconstructions as varied as the frames score 1."""
    return float(np.mean(np.var(images, axis=0)) / np.mean(np.var(frames, axis=0)))


def latent_statistics(model, frames, batch_size=256):
    """The encoder's (mu, logvar) of uint8 frames (n, 64, 64, 3), in batches: float32 (n, z_size) each."""
    batches = [model.encode(np.asarray(frames[start:start + batch_size], np.float32) / 255.0)
               for start in range(0, len(frames), batch_size)]
    return tuple(np.concatenate([batch[part].numpy() for batch in batches]) for part in (0, 1))


def latent_means(model, frames, batch_size=256):
    """The encoder's mean z of uint8 frames (n, 64, 64, 3), in batches: float32 (n, z_size)."""
    return latent_statistics(model, frames, batch_size)[0]


def latent_usage(mu, logvar):
    """How much of z carries the frame, from the encoder's (mu, logvar) of many frames (n, z_size).
    Per dimension, the signal-to-noise of a sampled z is the std of mu over the frames over the rms
    of sigma: M sees sampled z (and so does the controller, with controller_z=sample), so a dimension
    whose ratio is below 1 hands them mostly noise. Returns latent_spread, the std of mu averaged over
    z (1: as wide as N(0, I); far below, prior samples land where the decoder was never trained);
    informative_dimensions, those whose ratio is above 1; signal_to_noise, the median ratio; and
    kl_nats, KL(q(z|x) || N(0, I)) per frame, summed over z (the code's size)."""
    mu, logvar = np.asarray(mu, np.float64), np.asarray(logvar, np.float64)
    kl = -0.5 * np.sum(1.0 + logvar - np.square(mu) - np.exp(logvar), axis=1)
    ratio = np.std(mu, axis=0) / np.sqrt(np.mean(np.exp(logvar), axis=0))
    return {"latent_spread": float(np.mean(np.std(mu, axis=0))), "informative_dimensions": int(np.sum(ratio > 1.0)),
            "signal_to_noise": float(np.median(ratio)), "kl_nats": float(kl.mean())}


def linear_probe(train_features, train_targets, test_features, ridge=1.0):
    """Ridge regression fitted on (train_features (n, d), train_targets (n,)), applied to test_features
    (m, d): predictions (m,). Features are standardised with the training set's mean and std, and the
    bias (the training targets' mean) is not penalised; the small ridge keeps a probe fitted on a few
    hundred frames from fitting noise."""
    train_features = np.asarray(train_features, np.float64)
    mean, scale = train_features.mean(axis=0), train_features.std(axis=0) + 1e-8
    standardised = (train_features - mean) / scale
    targets = np.asarray(train_targets, np.float64)
    weights = np.linalg.solve(standardised.T @ standardised + ridge * np.eye(standardised.shape[1]),
                              standardised.T @ (targets - targets.mean()))
    return ((np.asarray(test_features, np.float64) - mean) / scale) @ weights + targets.mean()


def r_squared(targets, predictions):
    """Coefficient of determination: 1 - SSE / SST (1 is perfect, 0 is no better than the mean)."""
    targets = np.asarray(targets, np.float64)
    return 1.0 - np.sum((targets - predictions) ** 2) / np.sum((targets - targets.mean()) ** 2)


def driving_probe(train_z, train_state, test_z, test_state):
    """What z knows about driving: linear probes from z to speed and to on_road (dicts of per-step
    arrays "speed", "on_road"). Returns speed_r2, on_road_accuracy and on_road_majority (the
    accuracy of always guessing the training majority), all on the test frames."""
    speed = linear_probe(train_z, train_state["speed"], test_z)
    on_road = linear_probe(train_z, train_state["on_road"], test_z) > 0.5
    majority = np.mean(train_state["on_road"]) > 0.5
    return {"speed_r2": float(r_squared(test_state["speed"], speed)),
            "on_road_accuracy": float(np.mean(on_road == test_state["on_road"])),
            "on_road_majority": float(np.mean(test_state["on_road"] == majority))}


def as_uint8(images):
    """float images in [0, 1] -> uint8, for figures and GIFs."""
    return np.clip(np.asarray(images) * 255.0 + 0.5, 0, 255).astype(np.uint8)
