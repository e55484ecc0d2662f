"""The speed work of issue 11: the decoder's 1x1-input layer as a matrix product (same outputs,
gradients and parameters as Keras's layer), models saved before it still load, oneDNN on; and
TensorFlow's start-up without notices that read as errors."""

import os
import platform
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from common.checkpoints import TrainingCheckpoint
from common.quiet_start import start_up_lines_to_show
from stages.vision import WEIGHT_UPGRADES, load_vision_model
from vae.layers import Conv2DTransposeOf1x1, conv2d_transpose_of_1x1, rename_legacy_decoder_layers
from vae.vae import ConvVAE
from vaegan.vaegan import VAEGAN

WORLD_MODELS = Path(__file__).resolve().parents[1] / "WorldModels"
rng = np.random.default_rng(0)


@pytest.mark.parametrize("size,stride,activation", [(5, 2, "relu"), (4, 3, None), (1, 1, "sigmoid")])
def test_the_matrix_product_layer_equals_keras_conv2d_transpose(size, stride, activation):
    inputs = tf.constant(rng.normal(size=(3, 1, 1, 16)), tf.float32)
    reference = keras.layers.Conv2DTranspose(7, size, strides=stride, activation=activation,
                                             bias_initializer="random_normal")
    layer = Conv2DTransposeOf1x1(7, size, strides=stride, activation=activation)
    reference.build(inputs.shape)
    layer.build(inputs.shape)
    layer.set_weights(reference.get_weights())
    assert [w.shape for w in layer.weights] == [w.shape for w in reference.weights]  # same variables
    assert layer.count_params() == reference.count_params() and layer.get_config()["filters"] == 7
    weights = tf.constant(rng.normal(size=reference.compute_output_shape(inputs.shape)), tf.float32)
    gradients, outputs = [], []
    for network in (reference, layer):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            output = network(inputs)
            loss = tf.reduce_sum(weights * output)  # a loss that weights every output differently
        outputs.append(output.numpy())
        gradients.append([g.numpy() for g in tape.gradient(loss, [inputs, *network.trainable_variables])])
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-5, atol=1e-5)
    for expected, actual in zip(*gradients, strict=True):
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)


def test_the_matrix_product_against_numpy():
    inputs, kernel = rng.normal(size=(2, 1, 1, 4)), rng.normal(size=(3, 3, 5, 4))  # Keras: (k, k, out, in)
    expected = np.einsum("bc,hwoc->bhwo", inputs[:, 0, 0], kernel)
    np.testing.assert_allclose(conv2d_transpose_of_1x1(tf.constant(inputs), tf.constant(kernel)), expected, rtol=1e-6)


def test_the_matrix_product_layer_refuses_what_it_does_not_compute():
    with pytest.raises(ValueError, match="takes a 1x1 input; got input shape"):
        Conv2DTransposeOf1x1(8, 5, strides=2).build((None, 2, 2, 16))
    with pytest.raises(ValueError, match="padding='valid'"):
        Conv2DTransposeOf1x1(8, 5, strides=2, padding="same")


def make_legacy(path):
    """Rename a saved model's or checkpoint's decoder groups back to the layout of plain Conv2DTranspose
    layers: what the project saved before the first one became a Conv2DTransposeOf1x1."""
    with h5py.File(path, "r+") as weights:
        decoder_layers = weights["decoder/layers"]
        for index in (2, 1):
            decoder_layers.move(f"conv2d_transpose_{index}", f"conv2d_transpose_{index + 1}")
        decoder_layers.move("conv2d_transpose", "conv2d_transpose_1")
        decoder_layers.move("conv2d_transpose_of1x1", "conv2d_transpose")


def legacy_keras_file(model, path):
    """model saved as a .keras file in the legacy layout."""
    model.save(path)
    folder = path.parent / "unpacked"
    with zipfile.ZipFile(path) as archive:
        archive.extractall(folder)
    make_legacy(folder / "model.weights.h5")
    with zipfile.ZipFile(path, "w") as archive:
        for member in ("metadata.json", "config.json", "model.weights.h5"):
            archive.write(folder / member, member)


@pytest.mark.parametrize("make", [lambda: ConvVAE(z_size=6, seed=1),
                                  lambda: VAEGAN(z_size=6, seed=1, decoder="world_models")])  # what was saved then
def test_a_model_saved_before_the_change_still_loads_unchanged(tmp_path, make):
    model = make()
    model.build()
    legacy_keras_file(model, tmp_path / "vae.keras")
    before = (tmp_path / "vae.keras").read_bytes()
    with pytest.raises(ValueError, match="could not be loaded"):  # Keras alone cannot read it ...
        keras.models.load_model(tmp_path / "vae.keras", safe_mode=True, compile=False)
    loaded = load_vision_model(tmp_path / "vae.keras", z_size=6)  # ... the project upgrades it on the way in
    for expected, actual in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(actual, expected)
    assert (tmp_path / "vae.keras").read_bytes() == before  # the user's file is not touched


def test_a_checkpoint_saved_before_the_change_still_resumes(tmp_path):
    model = ConvVAE(z_size=6, seed=1)
    model.build()
    model.compile(optimizer=keras.optimizers.Adam())
    model.optimizer.build(model.trainable_variables)
    checkpoint = TrainingCheckpoint(tmp_path, 60, weight_upgrades=WEIGHT_UPGRADES)
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(0)
    make_legacy(checkpoint.weights_path)
    fresh = ConvVAE(z_size=6, seed=2)
    fresh.build()
    fresh.compile(optimizer=keras.optimizers.Adam())
    assert checkpoint.restore(fresh) == 1
    for expected, actual in zip(model.get_weights(), fresh.get_weights(), strict=True):
        np.testing.assert_array_equal(actual, expected)
    without_upgrades = TrainingCheckpoint(tmp_path, 60)
    with pytest.raises(ValueError, match="could not be loaded"):
        without_upgrades.restore(fresh)


def test_the_upgrade_leaves_current_files_alone(tmp_path):
    model = ConvVAE(z_size=6)
    model.build()
    model.save_weights(tmp_path / "current.weights.h5")
    with h5py.File(tmp_path / "current.weights.h5", "r+") as weights:
        assert rename_legacy_decoder_layers(weights) is False
        assert "conv2d_transpose_of1x1" in weights["decoder/layers"]


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="oneDNN's default matters on x86 CPUs")
@pytest.mark.parametrize("setting,expected", [(None, "True"), ("0", "False")])
def test_tensorflow_runs_with_onednn_unless_the_user_turns_it_off(setting, expected):
    environment = {key: value for key, value in os.environ.items() if key != "TF_ENABLE_ONEDNN_OPTS"}
    if setting is not None:
        environment["TF_ENABLE_ONEDNN_OPTS"] = setting
    code = "import vae.vae; from common.tensorflow_settings import onednn_enabled; print(onednn_enabled())"
    result = subprocess.run([sys.executable, "-c", code], cwd=WORLD_MODELS, env=environment, capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == expected


def test_tensorflow_starts_without_notices_that_read_as_errors_and_real_lines_still_show():
    """The start-up notices TensorFlow writes on a machine without a GPU (absl, cuInit, cuda drivers) are
    dropped; any other line written during start-up is kept."""
    code = ("import common.tensorflow_settings; import tensorflow as tf; import numpy as np; "
            "layer = tf.keras.layers.LSTM(4); print(layer(np.ones((1, 2, 3), np.float32)).shape)")
    result = subprocess.run([sys.executable, "-c", code], cwd=WORLD_MODELS, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "(1, 4)"
    for notice in ("E0000", "W0000", "absl::InitializeLog", "cuInit"):
        assert notice not in result.stderr
    captured = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
                "E0000 00:00:1 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n"
                "E0000 00:00:1 other.cc:7] a real problem\n")
    assert start_up_lines_to_show(captured) == "E0000 00:00:1 other.cc:7] a real problem\n"
