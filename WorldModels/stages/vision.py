"""The vision stage (V), shared by vae_train.py and vaegan_train.py: build, train, save, evaluate.

Outputs, under <results_dir>/<exp_name>/<env_name>/<vision>/:
    <vision>.keras           the trained model (Keras format; load with load_vision_model)
    training_log.csv         one row of losses and validation metrics per epoch (also tensorboard/)
    figures/reconstructions_epoch_NNN.png   held-out frames, reconstructions, prior samples
    vision_metrics.json      MSE, SSIM and sharpness on the held-out frames
    <vision>_train.config    the resolved config;  checkpoint/  the state a killed run resumes from
"""

import hashlib
import json
import math

import common.tensorflow_settings  # noqa: F401  (first: TensorFlow reads its settings when imported)

# isort: split
import keras
import numpy as np

from common.checkpoints import TrainingCheckpoint, load_upgraded, truncate_log
from common.config import KEYS, VISIONS, settings_match, settings_of, stage_folder
from common.data import ReadFailures, array_dataset, frame_dataset, load_frames, load_steps, split_episodes
from common.episodes import FRAME_SHAPE, check_values, list_episodes
from common.errors import UserFacingError
from common.files import atomic_path, write_json_atomic
from common.layout import experiment_dir, model_path, record_dir, vision_dir, vision_metrics_path
from common.plots import image_rows, save_figure
from common.progress import keras_verbosity
from stages.vision_metrics import (
    as_uint8,
    diversity_ratio,
    driving_probe,
    evaluate_reconstructions,
    latent_means,
    latent_statistics,
    latent_usage,
    noise_share,
    realism,
    road_share,
)
from vae.layers import rename_legacy_decoder_layers
from vae.vae import ConvVAE
from vaegan.vaegan import VAEGAN

# applied to every model and checkpoint loaded (docs/formats.md, "Older folders")
WEIGHT_UPGRADES = (rename_legacy_decoder_layers,)
FIGURE_FRAMES = 8
# The vaegan_* keys that are not VAEGAN's own arguments (the optimisers' rates; the KL floor is positional)
VAEGAN_TRAINING_KEYS = ("vaegan_kl_tolerance", "vaegan_learning_rate", "vaegan_discriminator_learning_rate")
# Settings a trained model depends on: a rerun with other values is refused rather than resumed.
SETTINGS = {vision: settings_of(vision) for vision in VISIONS}


def vaegan_arguments(config):
    """VAEGAN's keyword arguments from the config: every vaegan_<name> key but VAEGAN_TRAINING_KEYS, as <name>."""
    return {key.removeprefix("vaegan_"): getattr(config, key) for key in KEYS
            if key.startswith("vaegan_") and key not in VAEGAN_TRAINING_KEYS}


def build_vision_model(config, vision):
    """A built and compiled ConvVAE or VAEGAN with the config's settings."""
    if vision == "vae":
        model = ConvVAE(config.z_size, config.vae_kl_tolerance, seed=config.seed)
        model.build()
        model.compile(optimizer=keras.optimizers.Adam(config.vae_learning_rate))
    else:
        model = VAEGAN(config.z_size, config.vaegan_kl_tolerance, seed=config.seed, **vaegan_arguments(config))
        model.build()
        discriminator_rate = config.vaegan_discriminator_learning_rate or config.vaegan_learning_rate
        model.compile(keras.optimizers.RMSprop(config.vaegan_learning_rate),  # encoder, decoder, discriminator
                      keras.optimizers.RMSprop(config.vaegan_learning_rate),
                      keras.optimizers.RMSprop(discriminator_rate))
    return model


def load_vision_model(path, z_size=None):
    """A trained vision model from its .keras file (safe mode); a clear error if missing or unfit."""
    if not path.exists():
        raise UserFacingError(f"{path}: no trained vision model; run {path.stem}_train.py first")
    try:
        model = load_upgraded(lambda file: keras.models.load_model(file, safe_mode=True, compile=False), path,
                              WEIGHT_UPGRADES)
    except Exception as error:
        raise UserFacingError(f"{path}: not a loadable vision model ({type(error).__name__}: {error})") from None
    if not isinstance(model, ConvVAE) or tuple(model.encoder.input_shape[1:]) != FRAME_SHAPE:
        raise UserFacingError(f"{path}: not a vision model for 64x64x3 frames")
    if z_size is not None and model.z_size != z_size:
        raise UserFacingError(f"{path}: has z_size={model.z_size}, the config says z_size={z_size}")
    return model


def held_out_frames(config):
    """(training episodes, held-out episodes, config.validation_frames frames spread over the held-out ones)."""
    training, held_out = split_episodes(list_episodes(record_dir(config)), config.holdout_fraction, config.seed)
    return training, held_out, load_frames([info.path for info in held_out], config.validation_frames)


PRIOR_SAMPLES = 64  # decoded prior samples whose diversity is measured (a collapsed decoder draws one picture)
PROBE_EPISODES = 100  # the driving probe is fitted on frames of at most this many training episodes
REFERENCE_EPISODES = 20  # the realism measures' real frames come from at most this many training episodes
PROBE_KEYS = ("obs", "speed", "on_road")


def probe_steps(config, training, held_out):
    """(training steps, held-out steps) for the driving probe, each a dict of obs, speed and on_road
    of validation_frames steps; None if some episode does not record speed and on_road."""
    if not all({"speed", "on_road"} <= set(info.keys) for info in training + held_out):
        return None
    chosen = training[::math.ceil(len(training) / PROBE_EPISODES)]
    return (load_steps([info.path for info in chosen], config.validation_frames, PROBE_KEYS),
            load_steps([info.path for info in held_out], config.validation_frames, PROBE_KEYS))


def reference_frames(config, training):
    """As many real frames as the held-out set, spread over up to REFERENCE_EPISODES training episodes:
    the real frames the realism measures judge every other set against (vision_metrics)."""
    chosen = training[::math.ceil(len(training) / REFERENCE_EPISODES)]
    return load_frames([info.path for info in chosen], config.validation_frames)


def prior_latents(count, z_size, seed=0):
    """`count` prior latents z ~ N(0, I) drawn from `seed` (the first k of any count are the same)."""
    return np.random.default_rng(seed).standard_normal((count, z_size)).astype("float32")


def decoded_prior_samples(model, count, seed=0, batch_size=250):
    """`count` decoded prior samples Dec(z) of prior_latents: float (count, 64, 64, 3)."""
    prior_z = prior_latents(count, model.z_size, seed)
    return np.concatenate([model.decode(prior_z[start:start + batch_size]).numpy()
                           for start in range(0, count, batch_size)])


def vision_metrics(model, validation_frames, probe, reference):
    """evaluate_reconstructions on the held-out frames, the diversity of decoded prior samples
    against the frames', the share of them that is noise and their share of road pixels beside the
    frames' (noise_share, road_share), the spread of the latent means, how much of z is used (latent_usage), a
    VAE/GAN's discriminator scores, the driving probe when `probe` (probe_steps) is given, and how
    real three sets of images look against `reference` (real frames of training episodes, uint8, as
    many as the held-out ones; reference_frames) to judges no model trained (stages/vision_metrics.py:
    realism): the held-out frames themselves (the floor: real frames of other tracks), their
    reconstructions, and as many decoded prior samples: frechet_<set>, two_sample_<set>,
    precision_<set> and recall_<set>, with <set> real, reconstruction and prior. Each set is
    independent of the reference, so the three are comparable, and the reconstructions differ from
    the floor only by being reconstructed."""
    metrics, reconstructions = evaluate_reconstructions(model, validation_frames)
    frames = validation_frames.astype("float32") / 255.0
    samples = decoded_prior_samples(model, len(frames))
    metrics["prior_diversity"] = diversity_ratio(frames, samples[:PRIOR_SAMPLES])
    metrics["prior_noise_share"] = noise_share(frames, samples)
    metrics["road_share_real"], metrics["road_share_prior"] = road_share(frames), road_share(samples)
    metrics.update(latent_usage(*latent_statistics(model, validation_frames)))
    if isinstance(model, VAEGAN):  # what its discriminator makes of each kind of image
        metrics.update(model.discriminator_scores(frames[:PRIOR_SAMPLES], prior_latents(PRIOR_SAMPLES, model.z_size)))
    if probe is not None:
        training, held_out = probe
        metrics.update(driving_probe(latent_means(model, training["obs"]), training,
                                     latent_means(model, held_out["obs"]), held_out))
    judged = realism(reference.astype("float32") / 255.0, {
        "real": frames, "reconstruction": reconstructions.astype("float32") / 255.0, "prior": samples})
    for name, measures in judged.items():
        metrics.update({f"{measure}_{name}": value for measure, value in measures.items()})
    return metrics


class ReconstructionFigures(keras.callbacks.Callback):
    """After every epoch: held-out frames, their reconstructions (and any comparison rows, such as
    another model's), and frames decoded from fixed prior samples, saved as one figure."""

    def __init__(self, frames, folder, label, comparison_rows=(), seed=0):
        super().__init__()
        self.frames, self.folder, self.label, self.comparison_rows = frames, folder, label, list(comparison_rows)
        self.seed = seed

    def on_train_begin(self, logs=None):
        # The same prior samples every epoch, so the figures show the decoder changing, not the samples.
        rng = np.random.default_rng(self.seed)
        self.prior_z = rng.standard_normal((len(self.frames), self.model.z_size)).astype("float32")

    def on_epoch_end(self, epoch, logs=None):
        rows = [("held-out", self.frames), (self.label, reconstruct(self.model, self.frames)),
                *self.comparison_rows, ("prior samples", as_uint8(self.model.decode(self.prior_z)))]
        figure = image_rows(rows, title=f"{self.label}, epoch {epoch + 1}")
        save_figure(figure, self.folder / f"reconstructions_epoch_{epoch + 1:03d}.png")


def reconstruct(model, frames):
    """uint8 frames -> uint8 reconstructions (from the latent mean)."""
    return as_uint8(model(frames.astype("float32") / 255.0, training=False))


def vision_checkpoint(config, vision, training):
    """The vision model's TrainingCheckpoint; its input is the set of training episodes (more rollouts
    make another training set, which a checkpoint is not resumed on)."""
    names = "\n".join(info.path.name for info in training)
    folder = vision_dir(config, vision)
    hint = (f"{record_dir(config)} holds other episodes than the ones {vision} was trained on (a new round of "
            f"extract.py adds some). To retrain the world model on all of them, keep the old one by moving its "
            f"folder aside (mv {folder} {folder}_before) or remove {folder / 'checkpoint'}, then rerun "
            f"{vision}_train.py, series.py and rnn_train.py; to keep using the old one, pass --record_name of the "
            "folder it was trained on")
    return TrainingCheckpoint(folder / "checkpoint", config.checkpoint_seconds,
                              inputs={"training_episodes": hashlib.sha256(names.encode()).hexdigest()},
                              weight_upgrades=WEIGHT_UPGRADES, retrain_hint=hint)


def vision_trained(config, vision):
    """True if `vision` has been trained for vae_num_epoch epochs on the current episodes and saved."""
    folder = vision_dir(config, vision)
    if not (model_path(config, vision).exists() and vision_metrics_path(config, vision).exists()
            and settings_match(folder, f"{vision}_train.py", config, SETTINGS[vision])):
        return False
    training, _ = split_episodes(list_episodes(record_dir(config)), config.holdout_fraction, config.seed)
    return vision_checkpoint(config, vision, training).epochs_done() >= config.vae_num_epoch


def train_vision(config, vision):
    """Train the vision model `vision` on record/ (resuming a killed run); returns its metrics dict.
    A model already trained for vae_num_epoch epochs is left as it is (downstream stages know its file)."""
    folder = vision_dir(config, vision)
    for info in list_episodes(record_dir(config)):  # before anything is written: a broken file is named
        check_values(info.path)
    with stage_folder(folder, config, f"{vision}_train.py", SETTINGS[vision]):
        if vision_trained(config, vision):
            print(f"{vision}: already trained for {config.vae_num_epoch} epochs; nothing to do "
                  f"(model {model_path(config, vision)})")
            return json.loads(vision_metrics_path(config, vision).read_text())
        training, held_out, validation_frames = held_out_frames(config)
        keras.utils.set_random_seed(config.seed)
        model = build_vision_model(config, vision)
        checkpoint = vision_checkpoint(config, vision, training)
        initial_epoch = checkpoint.restore(model)
        truncate_log(folder / "training_log.csv", initial_epoch)
        frames_per_epoch = sum(info.length for info in training)
        print(f"{vision}: {len(training)} training episodes ({frames_per_epoch} frames), {len(held_out)} held out; "
              + (f"resuming after epoch {initial_epoch}" if initial_epoch else "starting") + f"; outputs in {folder}")
        train_batches = frame_dataset([info.path for info in training], config.vae_batch_size,
                                      seed=config.seed + initial_epoch, repeat=True, drop_remainder=True)
        figure_frames = validation_frames[np.linspace(0, len(validation_frames) - 1, FIGURE_FRAMES).astype(int)]
        callbacks = [  # the checkpoint last: an epoch it records has its log row and figure written
            keras.callbacks.CSVLogger(folder / "training_log.csv", append=True),
            keras.callbacks.TensorBoard(folder / "tensorboard", write_graph=False),
            keras.callbacks.TerminateOnNaN(),
            ReadFailures([info.path for info in training]),
            ReconstructionFigures(figure_frames, folder / "figures", vision, seed=config.seed,
                                  comparison_rows=_other_vision_rows(config, vision, figure_frames)),
            checkpoint,
        ]
        history = model.fit(train_batches, epochs=config.vae_num_epoch, initial_epoch=initial_epoch,
                            steps_per_epoch=max(1, frames_per_epoch // config.vae_batch_size),
                            validation_data=array_dataset(validation_frames, config.vae_batch_size),
                            shuffle=False,  # the pipeline shuffles; Keras cannot shuffle a tf.data stream
                            callbacks=callbacks, verbose=keras_verbosity())
        losses = history.history.get("loss", [])
        if losses and not np.isfinite(losses[-1]):
            raise UserFacingError(f"{vision} training diverged (loss {losses[-1]}); {checkpoint.folder} holds the "
                                  "last finite state; lower the learning rate and rerun")
        with atomic_path(model_path(config, vision)) as temporary:
            model.save(temporary)
        probe = probe_steps(config, training, held_out)
        metrics = {"vision": vision, **vision_metrics(model, validation_frames, probe,
                                                      reference_frames(config, training))}
        write_json_atomic(vision_metrics_path(config, vision), metrics)
    print(f"{vision}: held-out MSE {metrics['mse']:.5f}, SSIM {metrics['ssim']:.3f}, "
          f"sharpness {metrics['sharpness']:.3f}\nmodel {model_path(config, vision)}; "
          f"log {folder / 'training_log.csv'}; figures {folder / 'figures'}")
    return metrics


def comparison_figure(config, models, count=FIGURE_FRAMES):
    """Held-out frames (past the zoom-in of an episode's first 50 steps), each model's reconstructions
    and each model's decoded prior samples (the same z for every model), in one figure:
    <experiment>/vae_vs_vaegan.png. `models` is {label: trained vision model}; returns the path."""
    _, held_out, _ = held_out_frames(config)
    episodes = [np.load(info.path)["obs"] for info in held_out]
    frames = np.concatenate([obs[min(60, len(obs) - 1)::40][:2] for obs in episodes])[:count]
    prior_z = prior_latents(count, config.z_size)
    rows = [("held-out", frames)]
    rows += [(label, reconstruct(model, frames)) for label, model in models.items()]
    rows += [(f"{label} prior", as_uint8(model.decode(prior_z))) for label, model in models.items()]
    return save_figure(image_rows(rows), experiment_dir(config) / "vae_vs_vaegan.png")


def _other_vision_rows(config, vision, frames):
    """For the VAE/GAN's figure: the trained VAE's reconstructions of the same frames, if it exists."""
    other = "vae" if vision == "vaegan" else None
    if other is None or not model_path(config, other).exists():
        return []
    return [(other, reconstruct(load_vision_model(model_path(config, other), config.z_size), frames))]


def evaluate_vision(config, visions=VISIONS):
    """Metrics of every trained vision model in `visions` on the same held-out frames: {vision: dict}."""
    training, held_out, frames = held_out_frames(config)
    probe, reference = probe_steps(config, training, held_out), reference_frames(config, training)
    results = {}
    for vision in visions:
        if model_path(config, vision).exists():
            model = load_vision_model(model_path(config, vision), config.z_size)
            results[vision] = {"vision": vision, **vision_metrics(model, frames, probe, reference)}
            write_json_atomic(vision_metrics_path(config, vision), results[vision])
    if not results:
        raise UserFacingError(f"no trained vision model under {vision_dir(config, 'vae').parent}; "
                              "run vae_train.py or vaegan_train.py first")
    return results

