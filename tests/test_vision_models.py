"""The vision models: shapes, losses against numpy, the VAE/GAN's gradient routing, learning, save/load."""

import zipfile

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from common.errors import UserFacingError
from stages.vision import load_vision_model
from stages.vision_metrics import (
    evaluate_reconstructions,
    feature_network,
    frechet_distance,
    latent_usage,
    noise_share,
    precision_recall,
    road_share,
    two_sample_accuracy,
)
from vae.layers import rename_legacy_decoder_layers
from vae.sharpness import SharpnessRatio, laplacian_variance, sharpness_ratio
from vae.vae import ConvVAE, build_decoder, build_encoder, floored_kl, kl_divergence, sample_latent, squared_error
from vaegan.vaegan import (
    VAEGAN,
    build_discriminator,
    build_larsen_decoder,
    equilibrium_updates,
    feature_distance,
    r1_penalty,
    real_and_fake_costs,
)

rng = np.random.default_rng(0)


def frames(count=6, seed=0):
    """Smooth random images (blurred noise), float32 in [0, 1]."""
    noise = np.random.default_rng(seed).uniform(0, 1, (count, 16, 16, 3)).astype(np.float32)
    return tf.image.resize(noise, (64, 64)).numpy().clip(0, 1)


# -- shapes -----------------------------------------------------------------------------------

def test_network_shapes_follow_world_models():
    encoder, decoder = build_encoder(32), build_decoder(32)
    assert [layer.filters for layer in encoder.layers if isinstance(layer, keras.layers.Conv2D)] == [32, 64, 128, 256]
    assert [(layer.filters, layer.kernel_size[0]) for layer in decoder.layers
            if isinstance(layer, keras.layers.Conv2DTranspose)] == [(128, 5), (64, 5), (32, 6), (3, 6)]
    mu, logvar = encoder(frames(5))
    assert mu.shape == logvar.shape == (5, 32)
    images = decoder(tf.zeros((5, 32)))
    assert images.shape == (5, 64, 64, 3) and images.dtype == tf.float32
    assert float(tf.reduce_min(images)) >= 0.0 and float(tf.reduce_max(images)) <= 1.0
    features, logit = build_discriminator("strided", feature_layer=3)(frames(5))
    assert features.shape == (5, 6, 6, 128) and logit.shape == (5, 1)
    assert build_discriminator("strided", feature_layer=2)(frames(1))[0].shape == (1, 14, 14, 64)
    assert build_discriminator(feature_layer=2)(frames(1))[0].shape == (1, 32, 32, 128)


# -- losses against numpy ---------------------------------------------------------------------

def test_kl_against_the_closed_form():
    mu, logvar = rng.normal(size=(7, 5)).astype(np.float32), rng.normal(size=(7, 5)).astype(np.float32)
    variance = np.exp(logvar)
    expected = 0.5 * np.sum(variance + mu**2 - 1.0 - logvar, axis=1)  # KL(N(mu, var) || N(0, 1))
    np.testing.assert_allclose(kl_divergence(mu, logvar), expected, rtol=1e-5)
    np.testing.assert_allclose(floored_kl(mu, logvar, 0.5), np.maximum(expected, 0.5 * 5), rtol=1e-5)
    np.testing.assert_allclose(kl_divergence(np.zeros((2, 5)), np.zeros((2, 5))), [0.0, 0.0], atol=1e-7)


def test_reconstruction_and_feature_losses_against_numpy():
    a, b = frames(3, seed=1), frames(3, seed=2)
    np.testing.assert_allclose(squared_error(a, b), np.sum((a - b) ** 2, axis=(1, 2, 3)), rtol=1e-5)
    real, fake = rng.normal(size=(4, 6, 6, 8)).astype(np.float32), rng.normal(size=(4, 6, 6, 8)).astype(np.float32)
    np.testing.assert_allclose(feature_distance(real, fake), 0.5 * np.sum((real - fake) ** 2, axis=(1, 2, 3)),
                               rtol=1e-5)


def test_discriminator_costs_are_binary_cross_entropies():
    real_logits, fake_logits = rng.normal(size=(5, 1)), rng.normal(size=(9, 1))
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    real_cost, fake_cost = real_and_fake_costs(tf.constant(real_logits), tf.constant(fake_logits))
    np.testing.assert_allclose(real_cost, -np.mean(np.log(sigmoid(real_logits))), rtol=1e-6)
    np.testing.assert_allclose(fake_cost, -np.mean(np.log(1 - sigmoid(fake_logits))), rtol=1e-6)
    smoothed, _ = real_and_fake_costs(tf.constant(real_logits), tf.constant(fake_logits), real_label=0.9)
    probability = sigmoid(real_logits)
    np.testing.assert_allclose(smoothed, -np.mean(0.9 * np.log(probability) + 0.1 * np.log(1 - probability)),
                               rtol=1e-6)


@pytest.mark.parametrize("real_cost, fake_cost, update_discriminator, update_decoder", [
    (0.7, 0.7, True, True),    # balanced: both learn
    (0.2, 0.7, False, True),   # the discriminator wins on real frames: it pauses
    (0.7, 0.1, False, True),   # ... or on fakes
    (1.2, 0.7, True, False),   # it is fooled: the decoder pauses
    (0.2, 1.2, True, True),    # both rules fire: both learn (the authors' rule)
])
def test_equilibrium_rule(real_cost, fake_cost, update_discriminator, update_decoder):
    result = equilibrium_updates(tf.constant(real_cost), tf.constant(fake_cost), equilibrium=0.68, margin=0.35)
    assert (bool(result[0]), bool(result[1])) == (update_discriminator, update_decoder)


def test_latent_usage_against_numpy():
    rng = np.random.default_rng(0)
    # 2 dimensions that carry the frame (mu varies, sigma 0.1), 3 collapsed to the prior (mu ~ 0, sigma ~ 1)
    mu = np.concatenate([rng.normal(0, 1.0, (500, 2)), rng.normal(0, 0.2, (500, 3))], axis=1)
    logvar = np.concatenate([np.full((500, 2), np.log(0.01)), np.full((500, 3), np.log(0.98))], axis=1)
    usage = latent_usage(mu, logvar)
    assert usage["informative_dimensions"] == 2
    ratio = np.concatenate([mu[:, :2].std(0) / 0.1, mu[:, 2:].std(0) / np.sqrt(0.98)])
    assert usage["signal_to_noise"] == pytest.approx(np.median(ratio), rel=1e-6) and usage["signal_to_noise"] < 0.3
    assert usage["kl_nats"] == pytest.approx(float(tf.reduce_mean(kl_divergence(mu, logvar))), rel=1e-6)
    assert usage["latent_spread"] == pytest.approx(mu.std(0).mean(), rel=1e-6)


def test_laplacian_variance_and_sharpness_against_numpy():
    images = frames(3, seed=4)
    gray = images @ np.array([0.2989, 0.587, 0.114], dtype=np.float32)
    edges = (gray[:, :-2, 1:-1] + gray[:, 2:, 1:-1] + gray[:, 1:-1, :-2] + gray[:, 1:-1, 2:]
             - 4 * gray[:, 1:-1, 1:-1])
    np.testing.assert_allclose(laplacian_variance(images), edges.reshape(3, -1).var(axis=1), rtol=1e-3)
    blurred = tf.nn.avg_pool2d(images, 3, 1, "SAME").numpy()
    assert float(sharpness_ratio(images, images)) == pytest.approx(1.0)
    assert float(sharpness_ratio(images, blurred)) < 0.75  # blur lowers it
    metric = SharpnessRatio()
    metric.update_state(images[:1], blurred[:1])
    metric.update_state(images[1:], blurred[1:])
    expected = laplacian_variance(blurred).numpy().sum() / laplacian_variance(images).numpy().sum()
    assert float(metric.result()) == pytest.approx(expected, rel=1e-5)


# -- the VAE/GAN's gradient routing -----------------------------------------------------------

def small_vaegan(**settings):
    """The authors' discriminator and decoder at a quarter of their width (the same layers and normalisation)."""
    model = VAEGAN(z_size=4, kl_tolerance=0.0, seed=0, **{"gamma": 0.5, "pixel_weight": 0.01,
                                                           "discriminator_width": 0.25, "decoder_width": 0.25,
                                                           **settings})
    model.build()
    model.compile(*(keras.optimizers.RMSprop(1e-3) for _ in range(3)))
    return model


def routing_inputs():
    return frames(4), tf.constant(rng.normal(size=(4, 4)), tf.float32), tf.constant(rng.normal(size=(4, 4)), tf.float32)


def naive_gradient(model, loss_name, network, inputs):
    """The gradient of one of the model's losses alone w.r.t. one network, by plain autodiff."""
    with tf.GradientTape() as tape:
        losses, _ = model.compute_losses(*inputs, training=True)
    return tape.gradient(losses[loss_name], network.trainable_variables)


def assert_gradients_close(actual, expected):
    for a, e in zip(actual, expected, strict=True):  # float32 round-off, relative to each gradient's scale
        np.testing.assert_allclose(a.numpy(), e.numpy(), rtol=2e-3, atol=max(1e-6, 1e-3 * float(np.abs(e).max())))


@pytest.mark.parametrize("settings", [{}, {"generator_loss": "non_saturating"}, {"real_label": 0.9},
                                      {"discriminator": "strided", "feature_layer": 3},
                                      {"decoder": "world_models"}, {"passes": "one"},
                                      {"passes": "one", "generator_loss": "non_saturating"},
                                      {"decoder_normalisation": "layer"}])
def test_each_network_gets_exactly_the_gradient_of_its_own_loss(settings):
    model, inputs = small_vaegan(**settings), routing_inputs()
    losses, gradients = model.losses_and_gradients(*inputs)
    # encoder: L_prior + L_llike (+ pixel); decoder: gamma L_llike - L_GAN (+ pixel); discriminator: L_GAN
    assert_gradients_close(gradients["encoder"], naive_gradient(model, "encoder", model.encoder, inputs))
    assert_gradients_close(gradients["decoder"], naive_gradient(model, "decoder", model.decoder, inputs))
    assert_gradients_close(gradients["discriminator"],
                           naive_gradient(model, "discriminator", model.discriminator, inputs))
    assert all(float(tf.reduce_sum(tf.abs(g))) > 0 for g in gradients["discriminator"][:2])


def test_two_passes_keep_prior_samples_out_of_the_feature_loss():
    """The authors' two passes: L_llike and the encoder's gradient do not depend on the prior samples
    (the decoder normalises the reconstructions alone); with one pass, the samples share its batch."""
    frames_, noise, prior_z = routing_inputs()
    other_prior_z = prior_z * 3.0 + 1.0
    for passes, depends in (("two", False), ("one", True)):
        model = small_vaegan(passes=passes)
        (losses, gradients), (other_losses, other_gradients) = (
            model.losses_and_gradients(frames_, noise, z) for z in (prior_z, other_prior_z))
        change = abs(float(losses["llike_loss"]) - float(other_losses["llike_loss"]))
        moved = change > 1e-4 * float(losses["llike_loss"])
        assert moved == depends, passes
        if not depends:
            assert_gradients_close(other_gradients["encoder"], gradients["encoder"])
        assert not np.allclose(float(losses["fake_cost"]), float(other_losses["fake_cost"]))


def test_the_gan_loss_does_not_reach_the_encoder():
    # The discriminator's final layer changes L_GAN but not Dis_l, hence not the encoder's loss.
    model, inputs = small_vaegan(), routing_inputs()
    encoder_before = model.losses_and_gradients(*inputs)[1]["encoder"]
    decoder_before = model.losses_and_gradients(*inputs)[1]["decoder"]
    logit_layer = model.discriminator.get_layer("logit")
    logit_layer.kernel.assign(logit_layer.kernel * -3.0 + 0.1)
    _, after = model.losses_and_gradients(*inputs)
    assert_gradients_close(after["encoder"], encoder_before)
    assert not np.allclose(after["decoder"][0].numpy(), decoder_before[0].numpy(), rtol=1e-3)


def test_the_discriminator_is_not_trained_on_the_feature_loss():
    # gamma scales L_llike in the decoder's loss: it must move the decoder's update, never the discriminator's.
    inputs = routing_inputs()
    low, high = small_vaegan(gamma=0.1), small_vaegan(gamma=10.0)
    high.set_weights(low.get_weights())
    _, low_gradients = low.losses_and_gradients(*inputs)
    _, high_gradients = high.losses_and_gradients(*inputs)
    assert_gradients_close(high_gradients["discriminator"], low_gradients["discriminator"])
    assert_gradients_close(high_gradients["encoder"], low_gradients["encoder"])
    assert not np.allclose(high_gradients["decoder"][0].numpy(), low_gradients["decoder"][0].numpy(), rtol=1e-3)


@pytest.mark.parametrize("architecture, feature_layer", [("larsen", 4), ("larsen", 2), ("strided", 3)])
def test_the_discriminator_never_gets_the_feature_loss(architecture, feature_layer):
    """L_llike does move the discriminator's layers up to Dis_l, so a routing that let it into the
    discriminator's update would change that update: its gradient must be L_GAN's alone."""
    model = small_vaegan(discriminator=architecture, feature_layer=feature_layer)
    inputs = routing_inputs()
    _, gradients = model.losses_and_gradients(*inputs)
    with tf.GradientTape(persistent=True) as tape:
        losses, _ = model.compute_losses(*inputs, training=True)
    variables = model.discriminator.trainable_variables
    gan = tape.gradient(losses["discriminator"], variables)
    llike = [tf.zeros_like(gradient) if other is None else other  # layers after Dis_l: no gradient
             for gradient, other in zip(gan, tape.gradient(losses["llike_loss"], variables), strict=True)]
    kernel = model.discriminator.get_layer("conv1").kernel
    first = next(index for index, variable in enumerate(variables) if variable is kernel)
    assert float(tf.norm(llike[first])) > 0.01 * float(tf.norm(gan[first])), "L_llike reaches the discriminator"
    assert_gradients_close(gradients["discriminator"], gan)
    mixed = [gan_part + llike_part for gan_part, llike_part in zip(gan, llike, strict=True)]
    assert not np.allclose(gradients["discriminator"][first].numpy(), mixed[first].numpy(), rtol=1e-3, atol=1e-6)


def discriminator_option_gradients(inputs, **settings):
    """(the plain VAE/GAN's gradients, the losses and gradients of one with the same weights and a
    discriminator-only option `settings`), after checking that the option leaves the encoder's and the
    decoder's gradients as they were."""
    plain, changed = small_vaegan(), small_vaegan(**settings)
    changed.set_weights(plain.get_weights())
    _, plain_gradients = plain.losses_and_gradients(*inputs)
    losses, gradients = changed.losses_and_gradients(*inputs)
    assert_gradients_close(gradients["decoder"], plain_gradients["decoder"])
    assert_gradients_close(gradients["encoder"], plain_gradients["encoder"])
    return plain_gradients, losses, gradients, changed


def test_label_smoothing_is_the_discriminators_alone():
    plain_gradients, _, smoothed_gradients, _ = discriminator_option_gradients(routing_inputs(), real_label=0.9)
    last = -1  # the logit's bias: moved by the real frames' target
    assert not np.allclose(smoothed_gradients["discriminator"][last].numpy(),
                           plain_gradients["discriminator"][last].numpy())


def test_the_discriminator_is_the_authors():
    """andersbll/autoencoding_beyond_pixels, architectures.img64x64: conv 5x5 32 (stride 1) + ReLU; conv
    5x5 stride 2 of 128, 256, 256, each + batch norm + ReLU; fully connected 512 + batch norm + ReLU;
    the real/fake output. Dis_l: the fourth convolution's output (8 x 8 x 256)."""
    discriminator = build_discriminator()
    convolutions = [discriminator.get_layer(f"conv{index}") for index in range(1, 5)]
    assert [layer.filters for layer in convolutions] == [32, 128, 256, 256]
    assert [layer.kernel_size for layer in convolutions] == [(5, 5)] * 4
    assert [layer.strides for layer in convolutions] == [(1, 1), (2, 2), (2, 2), (2, 2)]
    assert all(layer.padding == "same" for layer in convolutions)
    norms = [layer for layer in discriminator.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert [layer.name for layer in norms] == ["norm2", "norm3", "norm4", "norm_dense"]
    assert all(layer.momentum == 0.9 and layer.epsilon == 1e-6 for layer in norms)
    assert discriminator.get_layer("dense").units == 512 and discriminator.get_layer("logit").units == 1
    features, logits = discriminator(tf.zeros((2, 64, 64, 3)))
    assert features.shape == (2, 8, 8, 256) and logits.shape == (2, 1)
    assert build_discriminator(width=0.25).get_layer("conv4").filters == 64
    old = build_discriminator("strided", feature_layer=3)
    assert old(tf.zeros((1, 64, 64, 3)))[0].shape == (1, 6, 6, 128)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in old.layers)


def test_the_larsen_decoder_is_the_authors_generator():
    """architectures.img64x64's decoder: fully connected to 8 x 8 x 256 + batch norm + ReLU; 5x5 stride-2
    transposed convolutions of 256, 128, 32, each + batch norm + ReLU; a 5x5 convolution to 3 channels
    (sigmoid here, for frames in [0, 1])."""
    decoder = build_larsen_decoder(z_size=32)
    assert decoder.get_layer("dense").units == 8 * 8 * 256
    deconvolutions = [decoder.get_layer(f"deconv{index}") for index in range(1, 4)]
    assert [layer.filters for layer in deconvolutions] == [256, 128, 32]
    assert all(layer.kernel_size == (5, 5) and layer.strides == (2, 2) for layer in deconvolutions)
    norms = [layer for layer in decoder.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert [layer.name for layer in norms] == ["dense_norm", "deconv1_norm", "deconv2_norm", "deconv3_norm"]
    assert all(layer.momentum == 0.9 and layer.epsilon == 1e-6 for layer in norms)
    output = decoder.get_layer("frames")
    assert output.filters == 3 and output.kernel_size == (5, 5) and output.strides == (1, 1)
    decoded = decoder(tf.constant(rng.normal(size=(2, 32)), tf.float32))
    assert decoded.shape == (2, 64, 64, 3)
    assert 0.0 <= float(tf.reduce_min(decoded)) <= float(tf.reduce_max(decoded)) <= 1.0
    assert build_larsen_decoder(32, width=0.25).get_layer("deconv3").filters == 8


def test_the_larsen_decoder_normalises_in_training_and_not_after():
    # A training step moves the decoder's moving statistics; decoding outside training uses them, so one
    # frame decodes the same alone or in a batch.
    model = small_vaegan()
    norm = model.decoder.get_layer("dense_norm")
    assert np.all(norm.moving_mean.numpy() == 0.0)
    model.train_step(tf.constant(frames(4)))
    assert np.any(norm.moving_mean.numpy() != 0.0) and np.any(norm.moving_variance.numpy() != 1.0)
    z = tf.constant(rng.normal(size=(4, 4)), tf.float32)
    np.testing.assert_allclose(model.decode(z[:1]).numpy(), model.decode(z)[:1].numpy(), atol=1e-5)
    assert not np.allclose(model.decode(z[:1], training=True).numpy(), model.decode(z, training=True)[:1].numpy(),
                           atol=1e-3)


def test_discriminator_scores_are_its_mean_probability_of_real_for_each_kind_of_image():
    model, data = small_vaegan(), frames(3)
    prior_z = tf.constant(rng.normal(size=(5, 4)), tf.float32)
    scores = model.discriminator_scores(data, prior_z)

    def mean_probability(images):
        return float(np.mean(1.0 / (1.0 + np.exp(-model.discriminator(images)[1].numpy()))))

    assert scores["discriminator_real"] == pytest.approx(mean_probability(data), rel=1e-5)
    assert scores["discriminator_reconstruction"] == pytest.approx(mean_probability(model(data)), rel=1e-5)
    assert scores["discriminator_prior"] == pytest.approx(mean_probability(model.decode(prior_z)), rel=1e-5)


def test_a_vaegan_holds_only_its_three_networks_and_is_no_legacy_file(tmp_path):
    model = small_vaegan()
    networks = (model.encoder, model.decoder, model.discriminator)
    own = {id(weight) for network in networks for weight in network.weights}
    assert {id(weight) for weight in model.weights} == own  # no unused decoder built and saved
    model.save(tmp_path / "model.keras")  # the old-VAE upgrade must leave the authors' decoder alone
    with zipfile.ZipFile(tmp_path / "model.keras") as archive:
        archive.extract("model.weights.h5", tmp_path)
    with h5py.File(tmp_path / "model.weights.h5", "r+") as weights:
        assert rename_legacy_decoder_layers(weights) is False


def test_a_model_saved_with_the_first_discriminator_loads_with_it():
    model = small_vaegan(discriminator="strided", feature_layer=3)
    config = model.get_config()
    for key in ("discriminator", "discriminator_width", "generator_loss", "real_label", "decoder",
                "decoder_width"):  # as saved before
        del config[key]
    loaded = VAEGAN.from_config(config)
    assert loaded.architecture == "strided" and loaded.generator_loss == "minimax"
    assert loaded.decoder_architecture == "world_models"


@pytest.mark.parametrize("equilibrium, discriminator_moves, decoder_moves", [
    (100.0, False, True),   # every cost far below equilibrium - margin: the discriminator is "too strong"
    (-100.0, True, False),  # every cost far above equilibrium + margin: the discriminator is "too weak"
])
def test_a_skipped_update_really_skips(equilibrium, discriminator_moves, decoder_moves):
    model = small_vaegan(equilibrium=equilibrium, margin=0.0)
    networks = {"encoder": model.encoder, "decoder": model.decoder, "discriminator": model.discriminator}
    before = {name: [w.numpy().copy() for w in network.trainable_weights] for name, network in networks.items()}
    logs = model.train_step(tf.constant(frames(4)))
    moved = {name: any(not np.array_equal(old, new.numpy())
                       for old, new in zip(before[name], network.trainable_weights, strict=True))
             for name, network in networks.items()}
    assert moved == {"encoder": True, "decoder": decoder_moves, "discriminator": discriminator_moves}
    assert float(logs["decoder_updates"]) == float(decoder_moves)
    assert int(model.discriminator_optimizer.iterations) == int(discriminator_moves)


# -- learning, saving, loading ----------------------------------------------------------------

def test_a_tiny_vae_loss_falls():
    keras.utils.set_random_seed(1)
    model = ConvVAE(z_size=8, kl_tolerance=0.5, seed=1)
    model.build()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    # learnable structure: a colour per image and a bright square whose place varies
    data = np.zeros((16, 64, 64, 3), np.float32)
    for index, image in enumerate(data):
        image[:] = np.random.default_rng(index).uniform(0, 1, 3)
        row, column = 4 * (index % 4) + 8, 4 * (index // 4) + 8
        image[row:row + 24, column:column + 24] = 1.0
    history = model.fit(data, batch_size=8, epochs=30, verbose=0, shuffle=False)
    losses = history.history["loss"]
    assert losses[-1] < 0.75 * losses[0]  # 0.58 seen


@pytest.mark.parametrize("settings", [{}, {"r1_weight": 1.0}])
def test_a_tiny_vaegan_trains_without_nan(settings):
    model = small_vaegan(**settings)  # fit compiles train_step into a graph, where R1's second-order gradient runs
    history = model.fit(frames(8, seed=5), batch_size=4, epochs=2, verbose=0, validation_data=frames(4, seed=6))
    assert all(np.isfinite(values).all() for values in history.history.values())
    assert {"kl_loss", "llike_loss", "pixel_mse", "discriminator_loss", "real_accuracy", "fake_accuracy"} <= set(
        history.history)
    assert (history.history["r1_penalty"][-1] > 0) == ("r1_weight" in settings)
    assert (history.history["val_r1_penalty"][-1] > 0) == ("r1_weight" in settings)


def test_a_layer_normalised_decoder_decodes_z_the_same_alone_in_a_batch_and_in_use():
    z = rng.normal(size=(6, 4)).astype(np.float32)
    layer_norm, batch_norm = build_larsen_decoder(4, 0.25, "layer"), build_larsen_decoder(4, 0.25, "batch")
    for decoder, independent in ((layer_norm, True), (batch_norm, False)):
        alone = decoder(z[:1], training=True).numpy()
        in_batch = decoder(z, training=True).numpy()[:1]
        in_use = decoder(z[:1], training=False).numpy()
        assert np.allclose(alone, in_batch, atol=1e-5) == independent
        assert np.allclose(alone, in_use, atol=1e-5) == independent
    with pytest.raises(ValueError, match="normalisation"):
        build_larsen_decoder(4, 0.25, "group")


def test_r1_penalty_of_a_linear_discriminator_is_its_weights_squared_norm():
    """logit = w . x + b has grad_x logit = w at every frame, so R1 = ||w||^2 whatever the frames."""
    inputs = keras.Input((4, 4, 3))
    flat = keras.layers.Flatten()(inputs)
    discriminator = keras.Model(inputs, [flat, keras.layers.Dense(1, name="logit")(flat)])
    weights = discriminator.get_layer("logit").kernel.numpy()
    penalty = r1_penalty(discriminator, tf.constant(rng.uniform(size=(5, 4, 4, 3)), tf.float32))
    np.testing.assert_allclose(float(penalty), float(np.sum(weights ** 2)), rtol=1e-5)


def test_r1_moves_the_discriminators_update_alone_by_half_its_weight_times_its_gradient():
    inputs = routing_inputs()
    plain_gradients, losses, gradients, regularised = discriminator_option_gradients(inputs, r1_weight=3.0)
    with tf.GradientTape() as tape:
        penalty = r1_penalty(regularised.discriminator, inputs[0])
    expected = [gan if extra is None else gan + 1.5 * extra for gan, extra in zip(
        plain_gradients["discriminator"], tape.gradient(penalty, regularised.discriminator.trainable_variables),
        strict=True)]
    assert float(losses["r1_penalty"]) > 0
    assert_gradients_close(gradients["discriminator"], expected)
    assert not np.allclose(gradients["discriminator"][0].numpy(), plain_gradients["discriminator"][0].numpy(),
                           rtol=1e-3)


@pytest.mark.parametrize("make", [lambda: ConvVAE(z_size=6, seed=2), lambda: small_vaegan(gamma=0.3),
                                  lambda: small_vaegan(decoder="world_models"),
                                  lambda: small_vaegan(decoder_normalisation="layer", r1_weight=1.0)])
def test_a_saved_and_loaded_model_gives_the_same_encodings(tmp_path, make):
    model = make()
    model.build()
    if isinstance(model, VAEGAN):  # one step, so batch normalisation's moving statistics must round trip too
        model.train_step(tf.constant(frames(4)))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = load_vision_model(path, z_size=model.z_size)
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    data = frames(3, seed=6)
    for original, reloaded in zip(model.encode(data), loaded.encode(data), strict=True):
        np.testing.assert_allclose(original.numpy(), reloaded.numpy(), rtol=1e-6)
    np.testing.assert_allclose(model(data).numpy(), loaded(data).numpy(), rtol=1e-5, atol=1e-6)


def test_loading_refuses_missing_unfit_and_mismatched_models(tmp_path):
    with pytest.raises(UserFacingError, match="no trained vision model"):
        load_vision_model(tmp_path / "vae.keras")
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a model")
    with pytest.raises(UserFacingError, match="junk.keras: not a loadable vision model"):
        load_vision_model(junk)
    model = ConvVAE(z_size=6)
    model.build()
    model.save(tmp_path / "vae.keras")
    with pytest.raises(UserFacingError, match="z_size=6, the config says z_size=32"):
        load_vision_model(tmp_path / "vae.keras", z_size=32)


def test_evaluate_reconstructions_of_a_perfect_model():
    class Identity(keras.Model):
        def call(self, images, training=False):
            return images

    data = (frames(5, seed=7) * 255).astype(np.uint8)
    metrics, _ = evaluate_reconstructions(Identity(), data, batch_size=2)
    assert metrics["mse"] == pytest.approx(0.0, abs=1e-12) and metrics["ssim"] == pytest.approx(1.0, abs=1e-5)
    assert metrics["sharpness"] == pytest.approx(1.0, rel=1e-5) and metrics["frames"] == 5
    assert metrics["diversity"] == pytest.approx(1.0, rel=1e-5)

    class Collapsed(keras.Model):  # one picture whatever the input
        def call(self, images, training=False):
            return tf.zeros_like(images) + 0.5

    assert evaluate_reconstructions(Collapsed(), data)[0]["diversity"] == 0.0


def test_sample_latent_is_the_reparameterisation():
    mu, logvar, noise = np.ones((2, 3)), np.log(np.full((2, 3), 4.0)), np.full((2, 3), 0.5)
    np.testing.assert_allclose(sample_latent(mu, logvar, noise), 1.0 + 2.0 * 0.5)


# -- the realism judges -----------------------------------------------------------------------

def test_frechet_distance_against_closed_forms():
    features = rng.normal(size=(400, 5)) @ rng.normal(size=(5, 5)) + rng.normal(size=5)
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-6)
    shift = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    assert frechet_distance(features, features + shift) == pytest.approx(float(shift @ shift), rel=1e-6)
    # scaled by 2: the covariance is 4x, so Tr(C + 4C - 2 * 2C) = Tr(C), plus the mean's distance
    mean, covariance = features.mean(axis=0), np.cov(features, rowvar=False)
    expected = float(mean @ mean + np.trace(covariance))
    assert frechet_distance(features, 2 * features) == pytest.approx(expected, rel=1e-6)
    # any two sets: Tr((C_a C_b)^(1/2)) = Tr((C_a^(1/2) C_b C_a^(1/2))^(1/2)), a symmetric square root
    other = rng.normal(size=(300, 5)) * [1.0, 2.0, 0.5, 1.0, 3.0]
    cov_a, cov_b = covariance, np.cov(other, rowvar=False)
    values, vectors = np.linalg.eigh(cov_a)
    root_a = vectors @ np.diag(np.sqrt(values)) @ vectors.T
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    expected = np.sum((mean - other.mean(axis=0)) ** 2) + np.trace(cov_a + cov_b) - 2 * np.sum(np.sqrt(middle))
    assert frechet_distance(features, other) == pytest.approx(float(expected), rel=1e-6)


def test_the_feature_network_is_fixed_by_its_seed():
    images = frames(5)
    first, again, other = feature_network(), feature_network(), feature_network(seed=1)
    assert first(images).shape == (5, 256)
    np.testing.assert_array_equal(first(images).numpy(), again(images).numpy())
    assert not np.allclose(first(images).numpy(), other(images).numpy())
    assert float(np.std(first(images).numpy(), axis=0).mean()) > 0, "features must vary with the image"


def test_precision_recall_against_a_loop_over_points():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(30, 4))  # samples: a narrow part of the data, and a cluster away from it
    generated = np.concatenate([0.5 * rng.normal(size=(15, 4)), rng.normal(size=(10, 4)) + 4.0])

    def share_covered(manifold, queries, k=3):  # the definition, point by point
        radii = [sorted(np.linalg.norm(manifold - point, axis=1))[k] for point in manifold]
        balls = list(zip(manifold, radii, strict=True))
        return np.mean([any(np.linalg.norm(query - point) <= radius for point, radius in balls) for query in queries])

    precision, recall = precision_recall(real, generated)
    assert precision == pytest.approx(share_covered(real, generated)) and recall == pytest.approx(
        share_covered(generated, real))
    assert 0.0 < precision < 1.0 and 0.0 < recall < 1.0


def test_precision_recall_tell_noise_from_mode_dropping():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(400, 8))
    assert min(precision_recall(real, rng.normal(size=(400, 8)))) > 0.7  # the same distribution
    assert precision_recall(real, rng.normal(size=(400, 8)) + 20.0) == (0.0, 0.0)  # noise far from every frame
    collapsed = np.repeat(real[:1], 400, axis=0)  # one real picture, drawn every time
    assert precision_recall(real, collapsed) == (1.0, pytest.approx(1 / 400))
    precision, recall = precision_recall(real, real[real[:, 0] > 1.0])  # real, but one part of the data only
    assert precision == 1.0 and recall < 0.6
    with pytest.raises(ValueError, match="more than k=3 points"):
        precision_recall(real, real[:3])


def test_noise_share_counts_the_images_sharper_than_any_real_frame():
    real = frames(10, seed=1)
    static = np.random.default_rng(2).uniform(0, 1, (4, 64, 64, 3)).astype(np.float32)  # a decoder's static
    assert noise_share(real, frames(12, seed=3)) == 0.0
    assert noise_share(real, np.concatenate([frames(12, seed=3), static])) == pytest.approx(4 / 16)


def test_road_share_counts_the_road_grey_pixels():
    grass, road, car, off_track = (np.array(colour, np.float32) for colour in (
        [0.4, 0.8, 0.4], [0.4, 0.4, 0.4], [0.8, 0.0, 0.0], [0.0, 0.0, 0.0]))
    image = np.broadcast_to(grass, (64, 64, 3)).copy()
    image[:, 16:32] = road + 0.01  # a quarter of the width: a road tile's shade
    image[60:, 20:24] = car
    images = np.stack([image, np.broadcast_to(off_track, (64, 64, 3))])
    assert road_share(images) == pytest.approx((64 * 16 - 4 * 4) / (64 * 64) / 2)


def test_two_sample_accuracy_is_chance_for_one_distribution_and_high_for_two():
    real, more_real = frames(120, seed=1), frames(120, seed=2)
    assert 0.3 <= two_sample_accuracy(real, more_real) <= 0.7
    blurred = tf.image.resize(tf.image.resize(more_real, (4, 4)), (64, 64)).numpy()  # what a blurry model draws
    assert two_sample_accuracy(real, blurred) >= 0.9
    with pytest.raises(ValueError, match="same size"):
        two_sample_accuracy(real, more_real[:10])


def test_every_vaegan_key_is_an_argument_of_the_model_and_the_reverse(make_config):
    """KEYS' vaegan_* keys (but the optimisers' and the KL floor) are exactly VAEGAN's keyword arguments, and
    a VAEGAN saved with them comes back with the same values: adding a knob means the model, KEYS, the configs."""
    import inspect

    from stages.vision import vaegan_arguments

    arguments = vaegan_arguments(make_config())
    parameters = set(inspect.signature(VAEGAN.__init__).parameters) - {"self", "z_size", "kl_tolerance", "seed",
                                                                         "kwargs"}
    assert set(arguments) == parameters
    model = VAEGAN(4, 0.5, **{**arguments, "discriminator_width": 0.125, "decoder_width": 0.125})
    assert {key: model.get_config()[key] for key in parameters} == {**arguments, "discriminator_width": 0.125,
                                                                    "decoder_width": 0.125}
