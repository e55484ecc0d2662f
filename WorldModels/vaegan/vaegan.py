"""VAE/GAN (Larsen et al. 2016, "Autoencoding beyond pixels using a learned similarity metric").

The encoder is the ConvVAE's (the same z, so the latents drop into series.py and the MDN-RNN
unchanged). The decoder, which doubles as the GAN's generator, is by default the authors' 64x64
generator (build_larsen_decoder: batch normalisation in every hidden layer, as DCGAN's); the
ConvVAE's decoder ("world_models") stays selectable, but with the paper's gamma it collapses on
CarRacing (every reconstruction the same picture; bench/vaegan_stability.py). A discriminator Dis judges
real frames x, reconstructions x~ = Dec(z ~ Enc(x)) and decoded prior samples x_p = Dec(z_p),
z_p ~ N(0, I), and its intermediate layer Dis_l is the learned similarity metric:

    L_prior = KL(q(z|x) || N(0, I)), floored at kl_tolerance * z_size as in World Models
    L_llike = 1/2 ||Dis_l(x) - Dis_l(x~)||^2    (Gaussian log-likelihood of Dis_l(x) around Dis_l(x~))
    L_GAN   = binary cross-entropy of Dis on x (real) against x~ and x_p (fake)

    encoder       minimises L_prior + L_llike                  (+ pixel_weight * pixel loss)
    decoder       minimises gamma * L_llike - L_GAN            (+ pixel_weight * pixel loss)
    discriminator minimises L_GAN only

Each network is updated with the gradient of its own loss only, so the discriminator is never
trained on L_llike and the GAN loss never reaches the encoder (the paper's "limit error signals
to relevant networks"). As in the paper's Algorithm 1 and the authors' code, the decoder's GAN
loss is -L_GAN: it fools the discriminator by maximising the cross-entropy the discriminator
minimises. That makes the decoder's GAN gradient the negated gradient of the discriminator's own
loss with respect to the fake frames, so one backward pass through the discriminator serves both
(see losses_and_gradients; the tests check it against each network's loss differentiated alone).
generator_loss="non_saturating" replaces -L_GAN by -mean log Dis(x_fake), an option for when the
discriminator wins early. gamma's default, 1e-5, is the authors' CelebA weight (their
recon_vs_gan_weight; their decoder's update is 1e-5 * L_llike's gradient - 0.99999 * L_GAN's), with
L_llike summed over Dis_l's features and both losses averaged over the batch, as here.

Balance, from the authors' code: with real_cost = -mean log Dis(x) and fake_cost =
-mean log(1 - Dis(fake)), the discriminator's update is skipped when either cost falls below
equilibrium - margin (it is winning too easily), and the decoder's when either rises above
equilibrium + margin (the discriminator is too weak to teach it); if both would be skipped, both
run. equilibrium 0.68 is about ln 2, the cost of a discriminator that cannot tell.

The discriminator (build_discriminator) is the authors' by default: batch normalisation and a fully
connected layer, Dis_l at its fourth convolution (8 x 8 x 256 features). It costs ~875 MFLOP per
frame forward, 11x the VAE's forward pass, and sees three frames per training frame; the authors'
decoder costs ~860 MFLOP per frame forward (about as much) and decodes two. A VAE/GAN
step is tens of VAE steps on a CPU; discriminator_width and decoder_width scale the two networks
down for small machines.
Two passes, as the authors' code (passes="two", their model/aegan.py): L_llike in a pass of its own
(the decoder on z alone, Dis_l on [x, x~]) and L_GAN in a second (the decoder on [z, z_p] with z's
gradient stopped, Dis on [x, x~, x_p]). With batch normalisation in the decoder, the pass that
L_llike and the encoder see then normalises reconstructions only, not reconstructions mixed with
prior samples. passes="one" shares one decoder and one discriminator
pass between the two losses: cheaper, but the prior samples then share the statistics L_llike is
computed with, so L_llike also reaches the encoder through the samples.
The authors weigh real against generated frames in L_GAN as 0.5 against 0.5 in all (each of the 2B
fakes 0.25, each real frame 0.5, summed); real_cost + fake_cost, each a mean, is the same loss
up to a constant factor. The discriminator may learn at its own rate (compile's optimizers), and may
be regularised by R1 (r1_weight > 0: r1_weight / 2 * r1_penalty added to its loss; 0, the authors').
real_label < 1 smooths the discriminator's targets for real frames (one-sided label smoothing);
the equilibrium rule and the decoder's minimax term use the unsmoothed costs, and the logged
discriminator_loss is the smoothed one it minimises. A smaller discriminator ("strided": four
stride-2 convolutions, no normalisation) is selectable for comparison. (Which settings models saved
without them load with: docs/formats.md, "Older folders".)
"""

import common.tensorflow_settings  # noqa: F401  (first: TensorFlow reads its settings when imported)

# isort: split
import keras
import tensorflow as tf
from keras import layers

from common.episodes import FRAME_SHAPE
from vae.vae import ConvVAE, floored_kl, pixel_mse, sample_latent, squared_error
from vaegan.options import DECODER_NORMALISATIONS, DECODERS, DISCRIMINATORS, GENERATOR_LOSSES, PASSES

# -- the math ---------------------------------------------------------------------------------

def feature_distance(real_features, reconstruction_features):
    """L_llike of each example: 1/2 sum of squared differences of Dis_l features: (batch,)."""
    difference = tf.reshape(real_features - reconstruction_features, (tf.shape(real_features)[0], -1))
    return 0.5 * tf.reduce_sum(tf.square(difference), axis=-1)


def real_and_fake_costs(real_logits, fake_logits, real_label=1.0):
    """(-mean log Dis(x), -mean log(1 - Dis(x_fake))): the discriminator's two cross-entropies. With
    real_label < 1 (one-sided label smoothing, Salimans et al. 2016) real frames are scored against
    that target instead of 1."""
    targets = tf.fill(tf.shape(real_logits), tf.cast(real_label, real_logits.dtype))
    real_cost = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(targets, real_logits))
    fake_cost = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(tf.zeros_like(fake_logits), fake_logits))
    return real_cost, fake_cost




def generator_gan_loss(fake_logits, gan_loss, kind):
    """The decoder's GAN term: minimax, -L_GAN (the paper's and the authors'); or non_saturating,
    -mean log Dis(x_fake) (Goodfellow et al.'s alternative, whose gradient does not vanish when the
    discriminator wins)."""
    if kind == "minimax":
        return -gan_loss
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(tf.ones_like(fake_logits), fake_logits))


def r1_penalty(discriminator, frames, training=True):
    """Mescheder et al.'s (2018) R1 regulariser: mean over real `frames` of ||grad_x logit Dis(x)||^2, (),
    differentiable with respect to the discriminator's variables. The discriminator's loss adds
    r1_weight / 2 times it, keeping the discriminator flat around real frames (with it, the GAN game
    converges locally). In training mode the batch statistics are the real frames' own."""
    frames = tf.convert_to_tensor(frames, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(frames)
        _, logits = discriminator(frames, training=training)
        summed = tf.reduce_sum(logits)  # frames' logits are independent (but for batch norm's statistics)
    gradients = tape.gradient(summed, frames)
    return tf.reduce_mean(tf.reduce_sum(tf.square(gradients), axis=[1, 2, 3]))


def equilibrium_updates(real_cost, fake_cost, equilibrium, margin):
    """(update the discriminator?, update the decoder?) by the authors' rule (module docstring)."""
    update_discriminator = tf.logical_not((real_cost < equilibrium - margin) | (fake_cost < equilibrium - margin))
    update_decoder = tf.logical_not((real_cost > equilibrium + margin) | (fake_cost > equilibrium + margin))
    neither = tf.logical_not(update_discriminator | update_decoder)
    return update_discriminator | neither, update_decoder | neither


# -- the discriminator ------------------------------------------------------------------------

BATCH_NORM = {"momentum": 0.9, "epsilon": 1e-6}  # the authors' batch normalisation settings


def build_discriminator(architecture="larsen", feature_layer=4, width=1.0):
    """frames (batch, 64, 64, 3) -> [Dis_l features, real/fake logit (batch, 1)].

    larsen: the authors' 64x64 discriminator (andersbll/autoencoding_beyond_pixels, img64x64): a 5x5
        convolution of 32 filters (stride 1) and ReLU; three 5x5 stride-2 convolutions of 128, 256
        and 256 filters, each with batch normalisation and ReLU; a fully connected layer of 512 with
        batch normalisation and ReLU; the logit. `width` scales every layer's size (1.0: theirs).
    strided: four 4x4 stride-2 "valid" convolutions (32, 64, 128, 256) with ReLU and the logit, no
        normalisation and no fully connected layer (for comparison).
    Dis_l is the output of convolution `feature_layer` (1-4), before its normalisation and activation,
    where the authors take it (their recon_depth=9 is the fourth convolution).
    """
    if architecture not in DISCRIMINATORS:
        raise ValueError(f"unknown discriminator {architecture!r}; expected one of {', '.join(DISCRIMINATORS)}")
    frames = keras.Input(FRAME_SHAPE, name="frames")
    hidden, features = frames, None
    if architecture == "strided":
        for index, filters in enumerate((32, 64, 128, 256), start=1):
            hidden = layers.Conv2D(filters, 4, strides=2, name=f"conv{index}")(hidden)
            features = hidden if index == feature_layer else features
            hidden = layers.ReLU()(hidden)
    else:
        def size(units):
            return max(1, round(units * width))

        hidden = layers.Conv2D(size(32), 5, padding="same", name="conv1")(hidden)
        features = hidden if feature_layer == 1 else None
        hidden = layers.ReLU()(hidden)
        for index, filters in enumerate((128, 256, 256), start=2):
            hidden = layers.Conv2D(size(filters), 5, strides=2, padding="same", use_bias=False,
                                   name=f"conv{index}")(hidden)
            features = hidden if index == feature_layer else features
            hidden = layers.ReLU()(layers.BatchNormalization(**BATCH_NORM, name=f"norm{index}")(hidden))
        hidden = layers.Dense(size(512), use_bias=False, name="dense")(layers.Flatten()(hidden))
        hidden = layers.ReLU()(layers.BatchNormalization(**BATCH_NORM, name="norm_dense")(hidden))
    logit = layers.Dense(1, name="logit")(layers.Flatten()(hidden))
    return keras.Model(frames, [features, logit], name="discriminator")




def build_larsen_decoder(z_size, width=1.0, normalisation="batch"):
    """z (batch, z_size) -> frames (batch, 64, 64, 3) in [0, 1]: the authors' 64x64 generator
    (img64x64): a fully connected layer to 8 x 8 x 256, then three 5x5 stride-2 transposed
    convolutions of 256, 128 and 32 filters, each of them with batch normalisation and ReLU, then a 5x5
    convolution to 3 channels. Their output is tanh for frames in [-1, 1]; ours is the sigmoid, for
    frames in [0, 1]. `width` scales every hidden layer's size (1.0: theirs). normalisation="layer"
    replaces batch normalisation by layer normalisation over each image's whole feature map, which
    decodes a z the same way alone or in any batch, in training and in use (batch normalisation
    decodes with the batch's statistics in training and with moving averages in use)."""
    if normalisation not in DECODER_NORMALISATIONS:
        raise ValueError(f"unknown decoder normalisation {normalisation!r}; expected one of "
                         f"{', '.join(DECODER_NORMALISATIONS)}")

    def size(units):
        return max(1, round(units * width))

    def normalised(layer, name):
        norm = (layers.BatchNormalization(**BATCH_NORM, name=f"{name}_norm") if normalisation == "batch" else
                layers.LayerNormalization(axis=[1, 2, 3] if name.startswith("deconv") else -1, epsilon=1e-6,
                                          name=f"{name}_norm"))
        return [layer, norm, layers.ReLU()]

    return keras.Sequential([
        keras.Input((z_size,), name="z"),
        *normalised(layers.Dense(8 * 8 * size(256), use_bias=False, name="dense"), "dense"),
        layers.Reshape((8, 8, size(256))),
        *[block for index, filters in enumerate((256, 128, 32), start=1) for block in normalised(
            layers.Conv2DTranspose(size(filters), 5, strides=2, padding="same", use_bias=False,
                                   name=f"deconv{index}"), f"deconv{index}")],
        layers.Conv2D(3, 5, padding="same", activation="sigmoid", name="frames"),
    ], name="decoder")


# -- the model --------------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="WorldModels")
class VAEGAN(ConvVAE):
    """A ConvVAE whose decoder is trained through a discriminator's features and a GAN loss.

    encode/decode/call are the ConvVAE's. compile() takes one optimizer per network.
    """

    TRACKED = ("loss", "kl_loss", "llike_loss", "pixel_mse", "discriminator_loss", "real_accuracy",
               "fake_accuracy", "prior_score", "discriminator_updates", "decoder_updates", "r1_penalty")

    def __init__(self, z_size=32, kl_tolerance=0.5, gamma=1e-5, pixel_weight=0.0, equilibrium=0.68,
                 margin=0.35, feature_layer=4, discriminator="larsen", discriminator_width=1.0,
                 generator_loss="minimax", real_label=1.0, decoder="larsen", decoder_width=1.0, passes="two",
                 r1_weight=0.0, decoder_normalisation="batch", seed=None, **kwargs):
        if passes not in PASSES:
            raise ValueError(f"unknown passes {passes!r}; expected one of {', '.join(PASSES)}")
        if generator_loss not in GENERATOR_LOSSES:
            raise ValueError(f"unknown generator_loss {generator_loss!r}; expected one of {GENERATOR_LOSSES}")
        if decoder not in DECODERS:
            raise ValueError(f"unknown decoder {decoder!r}; expected one of {', '.join(DECODERS)}")
        super().__init__(z_size=z_size, kl_tolerance=kl_tolerance, seed=seed, **kwargs,  # world_models: the ConvVAE's
                         decoder_network=build_larsen_decoder(z_size, decoder_width, decoder_normalisation)
                         if decoder == "larsen" else None)
        self.decoder_normalisation = decoder_normalisation
        self.decoder_architecture, self.decoder_width, self.passes = decoder, decoder_width, passes
        self.gamma, self.pixel_weight, self.feature_layer = gamma, pixel_weight, feature_layer
        self.equilibrium, self.margin, self.generator_loss = equilibrium, margin, generator_loss
        self.architecture, self.discriminator_width, self.real_label = discriminator, discriminator_width, real_label
        self.r1_weight = r1_weight
        self.discriminator = build_discriminator(discriminator, feature_layer, discriminator_width)

    def build(self, input_shape=(None, *FRAME_SHAPE)):
        super().build(input_shape)
        self.discriminator.build(input_shape)

    def compile(self, encoder_optimizer, decoder_optimizer, discriminator_optimizer, **kwargs):
        super().compile(optimizer=None, **kwargs)  # one optimizer per network instead
        self.encoder_optimizer = encoder_optimizer
        self.decoder_optimizer = decoder_optimizer
        self.discriminator_optimizer = discriminator_optimizer
        # Built now, so that their state can be restored from a checkpoint before the first step.
        self.encoder_optimizer.build(self.encoder.trainable_variables)
        self.decoder_optimizer.build(self.decoder.trainable_variables)
        self.discriminator_optimizer.build(self.discriminator.trainable_variables)

    def compute_losses(self, frames, noise, prior_z, training=False):
        """Every loss of the module docstring, and the decoded images they were computed from, for
        frames, latent noise and prior latents z_p: (losses, (llike_images, fakes)). llike_images is the
        decoder's output that L_llike (and the pixel loss) reach: the reconstructions (passes="two"),
        or reconstructions and samples decoded together (passes="one"); fakes is the decoder's output
        the discriminator judged, reconstructions then prior samples. The discriminator sees real and
        fake frames in one batch, as in the authors' code (its batch normalisation normalises both)."""
        batch = tf.shape(frames)[0]
        mu, logvar = self.encode(frames, training=training)
        z = sample_latent(mu, logvar, noise)
        if self.passes == "two":
            reconstructions = self.decode(z, training=training)
            features, _ = self.discriminator(tf.concat([frames, reconstructions], axis=0), training=training)
            llike_images = reconstructions
            # the GAN's pass: z's gradient stopped, so no GAN loss reaches the encoder
            fakes = self.decode(tf.concat([tf.stop_gradient(z), prior_z], axis=0), training=training)
            _, logits = self.discriminator(tf.concat([frames, fakes], axis=0), training=training)
        else:
            fakes = llike_images = self.decode(tf.concat([z, prior_z], axis=0), training=training)
            reconstructions = fakes[:batch]
            features, logits = self.discriminator(tf.concat([frames, fakes], axis=0), training=training)
        real_features, reconstruction_features = features[:batch], features[batch:2 * batch]
        real_logits, fake_logits = logits[:batch], logits[batch:]

        kl_loss = tf.reduce_mean(floored_kl(mu, logvar, self.kl_tolerance))
        llike_loss = tf.reduce_mean(feature_distance(real_features, reconstruction_features))
        pixel_loss = tf.reduce_mean(squared_error(frames, reconstructions))
        # Unsmoothed costs: what the equilibrium rule reads and the decoder's minimax term is made of
        # (label smoothing is the discriminator's alone); the discriminator's loss uses real_label.
        real_cost, fake_cost = real_and_fake_costs(real_logits, fake_logits)
        gan_loss = real_and_fake_costs(real_logits, fake_logits, self.real_label)[0] + fake_cost
        fooling_loss = generator_gan_loss(fake_logits, real_cost + fake_cost, self.generator_loss)
        losses = {
            # each network's own objective
            "encoder": kl_loss + llike_loss + self.pixel_weight * pixel_loss,
            "decoder": self.gamma * llike_loss + fooling_loss + self.pixel_weight * pixel_loss,
            "discriminator": gan_loss,
            # what is logged, and what the equilibrium rule reads
            "loss": kl_loss + llike_loss, "kl_loss": kl_loss, "llike_loss": llike_loss, "pixel_loss": pixel_loss,
            "pixel_mse": pixel_mse(frames, reconstructions), "discriminator_loss": gan_loss,
            "real_cost": real_cost, "fake_cost": fake_cost, "generator_gan_loss": fooling_loss,
            "real_accuracy": tf.reduce_mean(tf.cast(real_logits > 0, tf.float32)),
            "fake_accuracy": tf.reduce_mean(tf.cast(fake_logits < 0, tf.float32)),
            "prior_score": tf.reduce_mean(tf.sigmoid(fake_logits[batch:])),
        }
        return losses, (llike_images, fakes)

    def losses_and_gradients(self, frames, noise, prior_z):
        """(losses, {network: gradient of that network's own loss w.r.t. its own variables}).

        Equal to differentiating losses["encoder"], ["decoder"], ["discriminator"] separately: one
        backward pass through the discriminator for L_GAN, one for L_llike, one more for the decoder's
        GAN term when it is not -L_GAN (non-saturating, or label smoothing), and two through the decoder.
        """
        with tf.GradientTape(persistent=True) as tape:
            losses, (llike_images, fakes) = self.compute_losses(frames, noise, prior_z, training=True)
        discriminator_variables, zero = self.discriminator.trainable_variables, tf.UnconnectedGradients.ZERO
        # L_GAN once: the discriminator's own gradient, and how the fake frames move it.
        *discriminator_gradients, gan_wrt_fakes = tape.gradient(losses["discriminator"],
                                                                [*discriminator_variables, fakes])
        # The decoder's GAN term: minimax is -L_GAN, whose gradient is the one just taken, negated
        # (unless label smoothing made the discriminator's loss another one); the non-saturating loss
        # needs its own pass through the discriminator.
        if self.generator_loss == "minimax" and self.real_label == 1.0:
            fooling_wrt = -gan_wrt_fakes
        else:
            fooling_wrt = tape.gradient(losses["generator_gan_loss"], fakes, unconnected_gradients=zero)
        # How L_llike and the pixel loss move the decoded images (not the discriminator: not its loss).
        llike_wrt = tape.gradient(losses["llike_loss"], llike_images, unconnected_gradients=zero)
        pixel_wrt = self.pixel_weight * tape.gradient(losses["pixel_loss"], llike_images, unconnected_gradients=zero)
        decoder_variables = self.decoder.trainable_variables
        if self.passes == "two":  # gamma * L_llike (+ pixel) through the first pass, the GAN term through the second
            decoder_gradients = tape.gradient([llike_images, fakes], decoder_variables,
                                              output_gradients=[self.gamma * llike_wrt + pixel_wrt, fooling_wrt])
        else:  # one pass decoded both
            decoder_gradients = tape.gradient(fakes, decoder_variables,
                                              output_gradients=self.gamma * llike_wrt + fooling_wrt + pixel_wrt)
        # L_prior + L_llike (+ pixel); no GAN term reaches the encoder.
        encoder_gradients = tape.gradient([llike_images, losses["kl_loss"]], self.encoder.trainable_variables,
                                          output_gradients=[llike_wrt + pixel_wrt, tf.ones(())])
        del tape
        losses["r1_penalty"] = tf.zeros(())
        if self.r1_weight > 0:  # R1 on the real frames, a second-order gradient of the discriminator's own
            with tf.GradientTape() as tape:
                losses["r1_penalty"] = r1_penalty(self.discriminator, frames)
            penalty_gradients = tape.gradient(losses["r1_penalty"], discriminator_variables)
            # the logit's bias does not move the gradient at x: None (ZERO fails on Keras variables in graphs)
            discriminator_gradients = [
                gradient if penalty is None else gradient + 0.5 * self.r1_weight * penalty
                for gradient, penalty in zip(discriminator_gradients, penalty_gradients, strict=True)]
        return losses, {"encoder": encoder_gradients, "decoder": decoder_gradients,
                        "discriminator": discriminator_gradients}

    def train_step(self, frames):
        batch = tf.shape(frames)[0]
        noise = keras.random.normal((batch, self.z_size), seed=self.seed_generator)
        prior_z = keras.random.normal((batch, self.z_size), seed=self.seed_generator)
        losses, gradients = self.losses_and_gradients(frames, noise, prior_z)
        update_discriminator, update_decoder = equilibrium_updates(
            losses["real_cost"], losses["fake_cost"], self.equilibrium, self.margin)
        self.encoder_optimizer.apply_gradients(zip(gradients["encoder"], self.encoder.trainable_variables, strict=True))
        self._apply_if(update_decoder, self.decoder_optimizer, gradients["decoder"], self.decoder)
        self._apply_if(update_discriminator, self.discriminator_optimizer, gradients["discriminator"],
                       self.discriminator)
        losses["decoder_updates"] = tf.cast(update_decoder, tf.float32)
        losses["discriminator_updates"] = tf.cast(update_discriminator, tf.float32)
        return self._track(losses)

    @staticmethod
    def _apply_if(condition, optimizer, gradients, network):
        """Apply a network's update only when `condition` holds (a true skip: no optimizer step)."""
        def apply():
            optimizer.apply_gradients(zip(gradients, network.trainable_variables, strict=True))
            return tf.constant(True)
        tf.cond(condition, apply, lambda: tf.constant(False))

    def test_step(self, frames):
        batch = tf.shape(frames)[0]
        prior_z = keras.random.normal((batch, self.z_size), seed=self.seed_generator)
        losses, (llike_images, _) = self.compute_losses(frames, tf.zeros((batch, self.z_size)), prior_z)
        reconstructions = llike_images[:batch]
        # The update rule does not run in validation; log the fraction that would have run.
        update_discriminator, update_decoder = equilibrium_updates(
            losses["real_cost"], losses["fake_cost"], self.equilibrium, self.margin)
        losses["decoder_updates"] = tf.cast(update_decoder, tf.float32)
        losses["discriminator_updates"] = tf.cast(update_discriminator, tf.float32)
        losses["r1_penalty"] = (r1_penalty(self.discriminator, frames, training=False) if self.r1_weight > 0
                                else tf.zeros(()))
        self.sharpness_tracker.update_state(frames, reconstructions)
        return {**self._track(losses), "sharpness": self.sharpness_tracker.result()}

    def discriminator_scores(self, frames, prior_z):
        """Mean Dis(.) (the probability of "real", inference mode) of frames in [0, 1], of their
        reconstructions (from the mean) and of decoded prior samples z_p: which images the
        discriminator tells from real frames (a prior sample scored ~0 gets almost no minimax gradient)."""
        _, real = self.discriminator(frames, training=False)
        _, reconstruction = self.discriminator(self(frames), training=False)
        _, sample = self.discriminator(self.decode(prior_z), training=False)
        return {f"discriminator_{name}": float(tf.reduce_mean(tf.sigmoid(logits)))
                for name, logits in (("real", real), ("reconstruction", reconstruction), ("prior", sample))}

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma, "pixel_weight": self.pixel_weight,
                "equilibrium": self.equilibrium, "margin": self.margin, "feature_layer": self.feature_layer,
                "discriminator": self.architecture, "discriminator_width": self.discriminator_width,
                "generator_loss": self.generator_loss, "real_label": self.real_label,
                "decoder": self.decoder_architecture, "decoder_width": self.decoder_width, "passes": self.passes,
                "r1_weight": self.r1_weight, "decoder_normalisation": self.decoder_normalisation}

    @classmethod
    def from_config(cls, config):
        # a saved model without a setting loads with what it was trained with (docs/formats.md, "Older folders")
        return cls(**{"discriminator": "strided", "decoder": "world_models", "passes": "one", **config})
