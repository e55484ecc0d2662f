"""How vision models are judged: reconstruction MSE, SSIM, sharpness and diversity on held-out
frames, what the latent code knows about driving, and how real its images look to judges that no
model under test trained.

Sharpness (vae/sharpness.py) is the variance of the Laplacian (an edge detector) of the reconstructions divided by
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
from keras import layers

from vae.sharpness import SharpnessRatio, laplacian_variance


def evaluate_reconstructions(model, frames, batch_size=100):
    """MSE (per pixel, frames in [0, 1]), SSIM and sharpness of `model`'s reconstructions.

    model: a vision model whose call(frames) reconstructs from the latent mean.
    frames: uint8 (N, 64, 64, 3). Returns (a dict of floats and the frame count, the reconstructions
    as uint8 (N, 64, 64, 3), for measures that judge them further).
    """
    squared_error, ssim, sharpness, reconstructed = 0.0, 0.0, SharpnessRatio(), []
    for start in range(0, len(frames), batch_size):
        batch = tf.convert_to_tensor(frames[start:start + batch_size], tf.float32) / 255.0
        reconstructions = model(batch, training=False)
        squared_error += float(tf.reduce_sum(tf.reduce_mean(tf.square(batch - reconstructions), axis=[1, 2, 3])))
        ssim += float(tf.reduce_sum(tf.image.ssim(batch, reconstructions, max_val=1.0)))
        sharpness.update_state(batch, reconstructions)
        reconstructed.append(np.asarray(reconstructions))
    count, reconstructed = len(frames), np.concatenate(reconstructed)
    return {"mse": squared_error / count, "ssim": ssim / count, "sharpness": float(sharpness.result()),
            "diversity": diversity_ratio(np.asarray(frames, np.float32) / 255.0, reconstructed),
            "frames": int(count)}, as_uint8(reconstructed)


def diversity_ratio(frames, images):
    """How much `images` differ from one another, against the frames: the variance of each pixel across
    the images, averaged over pixels, over the same for the frames. A collapsed model, which draws one
    picture whatever its input, scores near 0; reconstructions as varied as the frames score 1."""
    return float(np.mean(np.var(images, axis=0)) / np.mean(np.var(frames, axis=0)))


NOISE_SHARPNESS = 3.0  # an image whose Laplacian varies this many times more than the sharpest real frame's is noise


def noise_share(frames, images):
    """The share of `images` that are noise: their Laplacian variance is over NOISE_SHARPNESS times the
    largest of the real `frames` (both float (n, 64, 64, 3) in [0, 1]). No real frame is; a decoder
    that draws static in parts of the prior is caught here, where a mean over images would hide it."""
    sharpest = float(np.max(laplacian_variance(frames)))
    return float(np.mean(np.asarray(laplacian_variance(images)) > NOISE_SHARPNESS * sharpest))


def road_share(images):
    """The mean share of road pixels in float images (n, 64, 64, 3) in [0, 1]: grey (the channels within
    0.06 of each other) of CarRacing's road brightness (their mean 0.3 to 0.5; the road is 0.4 to 0.42,
    grass green, the car red, the off-track black). Real frames: ~9%; a model that never draws the
    road: ~0."""
    images = np.asarray(images, np.float32)
    grey = (images.max(axis=-1) - images.min(axis=-1)) < 0.06
    brightness = images.mean(axis=-1)
    return float(np.mean(grey & (brightness > 0.3) & (brightness < 0.5)))


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


# -- judges of generated images that no model under test trained ------------------------------

def frechet_distance(features_a, features_b):
    """The Frechet distance between Gaussians fitted to two sets of features (n, d) and (m, d):
    ||mean_a - mean_b||^2 + Tr(cov_a + cov_b - 2 (cov_a cov_b)^(1/2)) (Heusel et al.'s FID, in
    another network's features). 0 for identical distributions; a float."""
    features_a, features_b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    mean_a, mean_b = features_a.mean(axis=0), features_b.mean(axis=0)
    cov_a, cov_b = np.cov(features_a, rowvar=False), np.cov(features_b, rowvar=False)
    # Tr((cov_a cov_b)^(1/2)) = Tr((root_a cov_b root_a)^(1/2)) with root_a = cov_a^(1/2): symmetric
    # square roots only, which stay exact where a feature never varies (a singular covariance)
    root_a = _symmetric_root(cov_a)
    trace_root = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0.0, None)))
    return float(np.sum(np.square(mean_a - mean_b)) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_root)


def _symmetric_root(matrix):
    """The symmetric square root of a symmetric positive semi-definite matrix."""
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def _distances(points_a, points_b):
    """Euclidean distances between the rows of (n, d) and (m, d): float64 (n, m)."""
    squared = (np.sum(points_a ** 2, axis=1)[:, None] + np.sum(points_b ** 2, axis=1)[None, :]
               - 2.0 * points_a @ points_b.T)
    return np.sqrt(np.clip(squared, 0.0, None))


def precision_recall(real_features, generated_features, k=3):
    """Improved precision and recall (Kynkaanniemi et al. 2019) of generated features (m, d) against
    real ones (n, d). Each set's manifold is the union of balls around its points, each as wide as the
    distance to the point's k-th nearest neighbour in its own set. precision: the share of generated
    points inside the real manifold (how many samples look real; noise samples fall outside), recall:
    the share of real points inside the generated manifold (how much of the data the samples cover; a
    model that never draws the road misses the frames with road). Returns (precision, recall) in [0, 1]."""
    real, generated = np.asarray(real_features, np.float64), np.asarray(generated_features, np.float64)
    if min(len(real), len(generated)) <= k:
        raise ValueError(f"precision_recall needs more than k={k} points in each set, got {len(real)} and "
                         f"{len(generated)}")

    def share_covered(manifold, queries):
        radii = np.sort(_distances(manifold, manifold), axis=1)[:, k]  # column 0 is the point itself
        return float(np.mean(np.any(_distances(queries, manifold) <= radii[None, :], axis=1)))

    return share_covered(real, generated), share_covered(generated, real)


FEATURE_SEED = 20161231  # the fixed judge's weights: the same on every machine (numpy, not a framework RNG)
FEATURE_CHANNELS = (16, 32, 64, 64)


def feature_network(seed=FEATURE_SEED):
    """A fixed, randomly initialised convolutional network: frames (batch, 64, 64, 3) in [0, 1] ->
    features (batch, 256). Four 4x4 stride-2 convolutions with ReLU (16, 32, 64, 64 channels; He-normal
    weights drawn by numpy from `seed`), the last 4x4 map average-pooled to 2x2, so the features keep
    colour, texture and the coarse layout (road ahead, grass at the sides). No model under test trained
    it, so it cannot be fooled by one, and 256 features are few enough for covariances from 1,000 frames."""
    rng = np.random.default_rng(seed)
    frames = keras.Input((64, 64, 3))
    hidden, weights = layers.Rescaling(2.0, offset=-1.0)(frames), []
    channels_in = 3
    for index, channels in enumerate(FEATURE_CHANNELS):
        hidden = layers.Conv2D(channels, 4, strides=2, padding="same", name=f"conv{index + 1}")(hidden)
        hidden = layers.ReLU()(hidden)
        fan_in = 4 * 4 * channels_in
        weights += [rng.normal(0.0, np.sqrt(2.0 / fan_in), (4, 4, channels_in, channels)).astype("float32"),
                    np.zeros(channels, "float32")]
        channels_in = channels
    features = layers.Flatten()(layers.AveragePooling2D(2)(hidden))
    network = keras.Model(frames, features, name="fixed_features")
    network.set_weights(weights)
    return network


def image_features(network, images, batch_size=250):
    """`network`'s features of float images in [0, 1] (n, 64, 64, 3), in batches: float64 (n, d)."""
    return np.concatenate([np.asarray(network(np.asarray(images[start:start + batch_size], np.float32),
                                              training=False), np.float64)
                           for start in range(0, len(images), batch_size)])


def two_sample_classifier(seed):
    """A fresh small convolutional classifier: frames in [0, 1] -> logit of "real" (batch, 1)."""
    initializer = keras.initializers.HeNormal(seed=seed)
    return keras.Sequential([
        keras.Input((64, 64, 3)), layers.Rescaling(2.0, offset=-1.0),
        *[layer for channels in (16, 32, 64) for layer in (
            layers.Conv2D(channels, 4, strides=2, padding="same", kernel_initializer=initializer), layers.ReLU())],
        layers.GlobalAveragePooling2D(), layers.Dense(1, kernel_initializer=keras.initializers.GlorotUniform(seed)),
    ], name="two_sample_classifier")


def two_sample_accuracy(real, generated, epochs=8, batch_size=64, seed=0):
    """The classifier two-sample test (Lopez-Paz & Oquab 2017): a fresh classifier learns to tell
    `real` from `generated` (float images in [0, 1], the same count n) on the first half of each, and
    is scored on the second half. Returns its held-out accuracy: 0.5 when the two sets cannot be told
    apart, 1.0 when every image is told. Pairs (a frame and its reconstruction) stay in one half."""
    real, generated = np.asarray(real, np.float32), np.asarray(generated, np.float32)
    if len(real) != len(generated) or len(real) < 4:
        raise ValueError(f"two_sample_accuracy needs two sets of the same size >= 4, got {len(real)} and "
                         f"{len(generated)}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(real))
    train, test = order[:len(real) // 2], order[len(real) // 2:]
    images = np.concatenate([real[train], generated[train]])
    labels = np.concatenate([np.ones(len(train)), np.zeros(len(train))]).astype(np.float32)
    # every epoch in its own order, drawn here, so the test is the same whatever Keras' global seed
    epoch_orders = np.concatenate([rng.permutation(len(images)) for _ in range(epochs)])
    classifier = two_sample_classifier(seed)
    classifier.compile(optimizer=keras.optimizers.Adam(1e-3),
                       loss=keras.losses.BinaryCrossentropy(from_logits=True))
    classifier.fit(images[epoch_orders], labels[epoch_orders], batch_size=batch_size, epochs=1, shuffle=False,
                   verbose=0)
    real_logits, generated_logits = (image_features(classifier, images) for images in (real[test], generated[test]))
    return float((np.sum(real_logits > 0) + np.sum(generated_logits <= 0)) / (2 * len(test)))


def realism(reference, image_sets, network=None):
    """How real each set of images looks, judged against the real `reference` frames (float in [0, 1],
    n of them) by the fixed feature network and a fresh two-sample classifier: {name: {"frechet":
    Frechet distance, "two_sample": two-sample accuracy, "precision": ..., "recall": ...}} for every
    set in image_sets {name: images (n, 64, 64, 3)} (precision_recall in the same features)."""
    network = network or feature_network()
    reference_features = image_features(network, reference)
    judged = {}
    for name, images in image_sets.items():
        features = image_features(network, images)
        precision, recall = precision_recall(reference_features, features)
        judged[name] = {"frechet": frechet_distance(reference_features, features),
                        "two_sample": two_sample_accuracy(reference, images),
                        "precision": precision, "recall": recall}
    return judged
