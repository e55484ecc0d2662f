"""How vision models are judged: reconstruction MSE, SSIM and sharpness on held-out frames.

Sharpness is the variance of the Laplacian (an edge detector) of the reconstructions divided by
that of the real frames: 1.0 is as sharp as the real frames, a blurry reconstruction scores below.
"""

import tensorflow_settings  # noqa: F401  (first: TensorFlow reads its settings when imported)

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
    squared_error, ssim, sharpness = 0.0, 0.0, SharpnessRatio()
    for start in range(0, len(frames), batch_size):
        batch = tf.convert_to_tensor(frames[start:start + batch_size], tf.float32) / 255.0
        reconstructions = model(batch, training=False)
        squared_error += float(tf.reduce_sum(tf.reduce_mean(tf.square(batch - reconstructions), axis=[1, 2, 3])))
        ssim += float(tf.reduce_sum(tf.image.ssim(batch, reconstructions, max_val=1.0)))
        sharpness.update_state(batch, reconstructions)
    count = len(frames)
    return {"mse": squared_error / count, "ssim": ssim / count, "sharpness": float(sharpness.result()),
            "frames": int(count)}


def as_uint8(images):
    """float images in [0, 1] -> uint8, for figures and GIFs."""
    return np.clip(np.asarray(images) * 255.0 + 0.5, 0, 255).astype(np.uint8)
