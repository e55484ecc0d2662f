"""A transposed convolution of a 1x1 input, computed as the matrix product it is.

The ConvVAE's decoder starts with Conv2DTranspose(128, 5, strides=2) on a 1x1x1024 input: every
output pixel is a weighted sum of the single input pixel's 1024 values, so the layer is one
(batch, 1024) x (1024, 5*5*128) matrix product. TensorFlow computes it with its generic
transposed-convolution kernel instead, which without oneDNN takes ~1.5 s per batch of 100 where
the matrix product takes ~20 ms (AMD EPYC, AVX2, TensorFlow 2.21), and is still slower than the
product with oneDNN. The layer below is Keras's Conv2DTranspose (same kernel and bias variables,
same config, same parameter count); only its call() differs.
"""

import common.tensorflow_settings  # noqa: F401  (first: TensorFlow reads its settings when imported)

# isort: split
import keras
import tensorflow as tf
from keras import layers


def conv2d_transpose_of_1x1(inputs, kernel):
    """A transposed convolution (any stride, padding "valid") of a 1x1 input, as a matrix product:
    inputs (batch, 1, 1, in), kernel (k, k, out, in), Keras's layout -> (batch, k, k, out)."""
    size, _, out_channels, in_channels = kernel.shape
    flat = tf.matmul(tf.reshape(inputs, (-1, in_channels)),
                     tf.reshape(kernel, (size * size * out_channels, in_channels)), transpose_b=True)
    return tf.reshape(flat, (-1, size, size, out_channels))


@keras.saving.register_keras_serializable(package="WorldModels")
class Conv2DTransposeOf1x1(layers.Conv2DTranspose):
    """keras.layers.Conv2DTranspose for a 1x1 input (padding "valid", channels_last), as a matrix product."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.padding != "valid" or self.data_format != "channels_last" or self.output_padding is not None:
            raise ValueError(f"{type(self).__name__} needs padding='valid', channels_last and no output_padding")

    def build(self, input_shape):
        if tuple(input_shape[1:3]) != (1, 1):
            raise ValueError(f"{type(self).__name__} takes a 1x1 input; got input shape {tuple(input_shape)}")
        super().build(input_shape)

    def call(self, inputs):
        outputs = conv2d_transpose_of_1x1(inputs, self.kernel)
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs) if self.activation is not None else outputs


def rename_legacy_decoder_layers(weights):
    """Upgrade, in place, the weights of a model saved before the decoder's first layer was a
    Conv2DTransposeOf1x1: Keras files a layer's variables under its class name and position, so
    the same variables sit under other names there. weights: an h5py file opened for writing (a
    .keras file's model.weights.h5, or a checkpoint). Returns True if it renamed anything."""
    decoder_layers = weights.get("decoder/layers")
    # The old layout has four plain transposed convolutions (the VAE/GAN's larsen decoder has three, and
    # batch normalisation): anything else is not for this upgrade.
    if (decoder_layers is None or "conv2d_transpose_of1x1" in decoder_layers
            or "conv2d_transpose_3" not in decoder_layers
            or any(name.startswith("batch_normalization") for name in decoder_layers)):
        return False
    decoder_layers.move("conv2d_transpose", "conv2d_transpose_of1x1")
    for index in (1, 2, 3):
        decoder_layers.move(f"conv2d_transpose_{index}", "conv2d_transpose" + (f"_{index - 1}" if index > 1 else ""))
    return True
