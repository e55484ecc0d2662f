"""Sharpness: the variance of the Laplacian (an edge detector) of images, and its ratio between
reconstructions and the real frames (1.0: as sharp as the real frames; blurry reconstructions score
below). A model package's module: the models log it while they train, stages/vision_metrics.py
reports it on held-out frames.
"""

import common.tensorflow_settings  # noqa: F401  (first: TensorFlow reads its settings when imported)

# isort: split
import keras
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
