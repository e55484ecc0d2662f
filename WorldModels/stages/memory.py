"""The memory stage (M), shared by series.py and rnn_train.py: encode rollouts, train the MDN-RNN.

Outputs, under <results_dir>/<exp_name>/<env_name>/<vision>/ (one set per vision model):
    series.npz              every episode encoded by that vision model (format: SERIES_FORMAT)
    rnn.keras               the trained MDN-RNN
    rnn_training_log.csv    losses per epoch, with val_z_nll beside val_baseline_nll (and tensorboard/rnn)
    initial_z.json          {"mu": [...], "logvar": [...]}: first frames of the training episodes (the dream)
    memory_metrics.json     held-out NLL of the RNN and of the baseline z_{t+1} = mu_t, and how much
                            M uses the actions (action_usage: stages/action_usage.py)
    figures/rnn_predictions_epoch_NNN.png   a held-out episode: frames, the vision model's
                            reconstructions, and frames decoded from the RNN's one-step predictions
    series.config, rnn_train.config, rnn_checkpoint/    resolved configs, the state a killed run resumes from
"""

import io
import json
import math

import common.tensorflow_settings  # noqa: F401  (first: TensorFlow reads its settings when imported)

# isort: split
import keras
import numpy as np
import tensorflow as tf

from common.checkpoints import TrainingCheckpoint, truncate_log
from common.config import save_config, settings_match, settings_of, stage_folder
from common.data import (
    episode_dataset,
    raise_read_failures,
    sequence_dataset,
    split_episodes,
    to_unit_float,
    validation_windows,
)
from common.episodes import check_values, list_episodes, load_episode
from common.errors import UserFacingError
from common.files import (
    atomic_path,
    file_sha256,
    folder_lock,
    remove_stale_temporaries,
    write_bytes_atomic,
    write_json_atomic,
)
from common.layout import initial_z_path, memory_metrics_path, model_path, record_dir, rnn_path, series_path, vision_dir
from common.plots import image_rows, save_figure
from common.progress import keras_verbosity, progress_bar
from rnn.rnn import MDNRNN, DecayedLearningRate, mixture_mean
from stages.action_usage import action_usage
from stages.vision import load_vision_model
from stages.vision_metrics import as_uint8, latent_means

# series.npz: key -> description (E episodes, T = max_frames steps, shorter episodes padded)
SERIES_FORMAT = {
    "mu": "float16 (E, T, z_size): latent means; 0 on padded steps",
    "logvar": "float16 (E, T, z_size): latent log-variances",
    "action": "float16 (E, T, 3)",
    "reward": "float16 (E, T)",
    "done": "bool (E, T): True on the last step and on every padded step",
    "length": "int32 (E): true number of steps",
    "episode": "str (E): the episode file's name in record/",
    "held_out": "bool (E): held out from training V and M (data.split_episodes)",
    "vision_model": "str: sha256 of the .keras file the series was encoded with",
}
CHUNK_EPISODES = 100  # series are encoded in parts of this many episodes, so a killed run resumes
RNN_SETTINGS = settings_of("rnn")


# -- series -----------------------------------------------------------------------------------

def series_up_to_date(config):
    """True if series.npz holds every episode of record/, encoded by the current vision model file."""
    target, model = series_path(config), model_path(config, config.vision)
    if not (target.exists() and model.exists()):
        return False
    names = [info.path.name for info in list_episodes(record_dir(config))]
    return _series_matches(target, names, file_sha256(model))


def encode_series(config):
    """Encode every episode of record/ with the config's vision model into series.npz; returns its path.

    Up to date already (same episodes, same vision model): nothing is done. A killed run resumes
    from the parts it finished (series_parts/).
    """
    vision = config.vision
    folder = vision_dir(config, vision)
    with folder_lock(folder, "series.py"):
        remove_stale_temporaries(folder)
        target = series_path(config, vision)
        if series_up_to_date(config):
            print(f"{target} is up to date (every episode, this {vision} model)")
            return target
        vision_model = load_vision_model(model_path(config, vision), config.z_size)
        encode = frame_encoder(vision_model)
        fingerprint = file_sha256(model_path(config, vision))
        episodes = list_episodes(record_dir(config))
        for info in episodes:  # before anything is written: a broken file is named (as vae_train.py does)
            check_values(info.path)
        names = [info.path.name for info in episodes]
        longer = [info for info in episodes if info.length > config.max_frames]
        if longer:  # another implementation's files, or a smaller max_frames than they were collected with
            print(f"{len(longer)} of {len(episodes)} episodes are longer than max_frames={config.max_frames} (up to "
                  f"{max(info.length for info in longer)} steps, e.g. {longer[0].path.name}): the series keeps "
                  "their first max_frames steps; raise max_frames to keep them whole")
        save_config(config, folder / "series.config")
        parts = []
        with progress_bar(total=len(episodes), desc=f"series ({vision})", unit="episode") as progress:
            for start in range(0, len(episodes), CHUNK_EPISODES):
                chunk = episodes[start:start + CHUNK_EPISODES]
                part = folder / "series_parts" / f"part_{start // CHUNK_EPISODES:05d}.npz"
                if not (part.exists() and _series_matches(part, names[start:start + len(chunk)], fingerprint)):
                    arrays = encode_episodes(encode, chunk, config, progress)
                    write_bytes_atomic(part, _npz_bytes({**arrays, "vision_model": fingerprint}))
                else:
                    progress.update(len(chunk))
                parts.append(part)
        _, held_out = split_episodes(episodes, config.holdout_fraction, config.seed)
        series = _concatenate(parts)
        series["held_out"] = np.isin(series["episode"], [info.path.name for info in held_out])
        write_bytes_atomic(target, _npz_bytes({**series, "vision_model": fingerprint}))
        for part in parts:
            part.unlink()
        (folder / "series_parts").rmdir()
    print(f"wrote {target}: {len(names)} episodes ({int(series['held_out'].sum())} held out), "
          f"{int(series['length'].sum())} steps")
    return target


def frame_encoder(vision_model):
    """encode(uint8 frames (n, 64, 64, 3)) -> (mu, logvar), compiled once (any n)."""
    return tf.function(lambda frames: vision_model.encode(to_unit_float(frames)), reduce_retracing=True)


def encode_episodes(encode, episodes, config, progress=None):
    """Series arrays (SERIES_FORMAT, without held_out) for EpisodeInfos. Episodes stream through
    tf.data (read ahead while encoding); encode = frame_encoder(model) runs on batches of
    vae_batch_size frames of one episode."""
    steps = config.max_frames
    lengths = np.array([min(info.length, steps) for info in episodes], np.int32)  # longer ones are cut
    series = {"mu": np.zeros((len(episodes), steps, config.z_size), np.float16),
              "action": np.zeros((len(episodes), steps, 3), np.float16),
              "reward": np.zeros((len(episodes), steps), np.float16),
              "done": np.ones((len(episodes), steps), bool)}
    series["logvar"] = np.zeros_like(series["mu"])
    paths = [info.path for info in episodes]
    for index, (info, frames, length) in enumerate(zip(episodes, episode_dataset(paths), lengths, strict=True)):
        raise_read_failures(paths)  # a damaged file, met while reading ahead
        _encode_one(encode, series, index, info, frames, length, config)
        if progress is not None:
            progress.update()
    return {**series, "length": lengths, "episode": np.array([info.path.name for info in episodes])}


def _encode_one(encode, series, index, info, frames, length, config):
    """Fill row `index` of the series arrays with episode `info`: its frames encoded, its actions and rewards."""
    for start in range(0, length, config.vae_batch_size):
        mu, logvar = encode(frames[start:min(start + config.vae_batch_size, length)])
        series["mu"][index, start:start + len(mu)], series["logvar"][index, start:start + len(mu)] = mu, logvar
    stored = load_episode(info.path, keys=[key for key in ("action", "reward", "done") if key in info.keys])
    series["action"][index, :length] = stored["action"][:length]
    if "reward" in stored:
        series["reward"][index, :length] = stored["reward"][:length]
    series["done"][index, :length] = stored["done"][:length] if "done" in stored else False
    series["done"][index, length - 1] = True  # the last step (the original's files have no done)


def _series_matches(path, names, fingerprint):
    try:
        with np.load(path, allow_pickle=False) as stored:
            return str(stored["vision_model"]) == fingerprint and stored["episode"].tolist() == names
    except (OSError, ValueError, KeyError):
        return False


def _concatenate(parts):
    loaded = []
    for part in parts:
        with np.load(part, allow_pickle=False) as stored:
            loaded.append({key: stored[key] for key in stored.files if key != "vision_model"})
    return {key: np.concatenate([arrays[key] for arrays in loaded]) for key in loaded[0]}


def _npz_bytes(arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def load_series(config):
    """The series.npz of the config's vision model as a dict of arrays; a clear error if it is missing or unfit."""
    path = series_path(config)
    if not path.exists():
        raise UserFacingError(f"{path}: no series; run series.py --vision {config.vision} first")
    try:
        with np.load(path, allow_pickle=False) as stored:
            series = {key: stored[key] for key in stored.files}
    except (OSError, ValueError) as error:
        raise UserFacingError(f"{path}: unreadable ({error}); delete it and run series.py again") from None
    missing = [key for key in SERIES_FORMAT if key not in series]
    if missing:
        raise UserFacingError(f"{path}: missing {', '.join(missing)}; run series.py again")
    if series["mu"].shape[-1] != config.z_size:
        raise UserFacingError(f"{path}: z_size {series['mu'].shape[-1]}, the config says {config.z_size}")
    if series["held_out"].all() or not series["held_out"].any():
        raise UserFacingError(f"{path}: needs both training and held-out episodes")
    return series


# -- the MDN-RNN ------------------------------------------------------------------------------

def build_rnn(config):
    """A built and compiled MDN-RNN with the config's settings (Adam, clipped gradients, decay)."""
    model = MDNRNN(config.z_size, config.rnn_size, config.rnn_num_mixture, config.rnn_r_pred, config.rnn_d_pred,
                   config.rnn_d_true_weight, seed=config.seed, dropout=config.rnn_dropout)
    model.build()
    schedule = DecayedLearningRate(config.rnn_learning_rate, config.rnn_decay_rate, config.rnn_min_learning_rate)
    model.compile(optimizer=keras.optimizers.Adam(schedule, clipvalue=config.rnn_grad_clip))
    return model


def load_rnn(path):
    if not path.exists():
        raise UserFacingError(f"{path}: no trained MDN-RNN; run rnn_train.py first")
    try:
        return keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as error:
        raise UserFacingError(f"{path}: not a loadable MDN-RNN ({type(error).__name__}: {error})") from None


def baseline_variance(mu, logvar, lengths):
    """Per-dimension variance, over the valid steps of episodes (E, T, z), of z_{t+1} - mu_t for z_{t+1}
    sampled from N(mu_{t+1}, exp(logvar_{t+1})): E[(mu_{t+1} - mu_t)^2] + E[exp(logvar_{t+1})]. (z,)"""
    steps = mu.shape[1]
    valid = (np.arange(1, steps)[None, :] < lengths[:, None])[..., None]
    spread = np.square(np.diff(mu.astype(np.float64), axis=1)) + np.exp(logvar[:, 1:].astype(np.float64))
    return (spread * valid).sum(axis=(0, 1)) / max(valid.sum(), 1)


def baseline_nll(z, mu, mask, variance):
    """Mean NLL per dimension of z_{t+1} under N(mu_t, variance), over valid targets (mask[:, 1:]).

    z, mu: windows (W, steps, z_size); mask (W, steps); variance (z_size,). The baseline "the next
    latent is the current one" that a learned M must beat, judged on the RNN's own targets.
    """
    error = z[:, 1:].astype(np.float64) - mu[:, :-1].astype(np.float64)
    nll = 0.5 * np.log(2 * np.pi * variance) + np.square(error) / (2 * variance)
    target_mask = mask[:, 1:, None] * np.ones_like(nll)
    return float((nll * target_mask).sum() / target_mask.sum())


class BaselineInLog(keras.callbacks.Callback):
    """Writes the baseline's held-out NLL into every epoch's logs (before CSVLogger sees them)."""

    def __init__(self, value):
        super().__init__()
        self.value = value

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["val_baseline_nll"] = self.value


class PredictionFigures(keras.callbacks.Callback):
    """After every epoch: a held-out episode's frames t+1, the vision model's reconstruction of them,
    and the frames decoded from the RNN's one-step prediction of z_{t+1} (the mixture mean)."""

    def __init__(self, vision_model, frames, mu, action, steps, folder, label):
        super().__init__()
        self.vision_model, self.frames, self.mu, self.action = vision_model, frames, mu, action
        self.steps, self.folder, self.label = steps, folder, label

    def on_train_begin(self, logs=None):
        # Compiled once: run eagerly, the LSTM's loop over the episode took ~0.7 s every epoch.
        @tf.function
        def predicted_means(mu, action):
            outputs = self.model([mu[None, :-1], action[None, :-1]])
            return mixture_mean(outputs["log_weights"], outputs["means"])[0]
        self.predicted_means = predicted_means

    def on_epoch_end(self, epoch, logs=None):
        predicted = self.predicted_means(self.mu, self.action).numpy()[self.steps]
        rows = [("frame t+1", self.frames[self.steps + 1]),
                (f"{self.label} z_(t+1)", as_uint8(self.vision_model.decode(self.mu[self.steps + 1]))),
                ("RNN prediction", as_uint8(self.vision_model.decode(predicted)))]
        figure = image_rows(rows, title=f"MDN-RNN one-step predictions, epoch {epoch + 1}")
        save_figure(figure, self.folder / f"rnn_predictions_epoch_{epoch + 1:03d}.png")


def one_step_frame_errors(vision_model, rnn, frames, actions, batch_size=256):
    """Per-step pixel errors of one episode's next-frame predictions, comparable across vision models
    (unlike NLLs in different latent spaces). frames uint8 (T, 64, 64, 3), actions (T, 3).

    Returns a dict of (T-1,) mean squared errors against frame t+1, pixels in [0, 1]:
    "rnn": the MDN-RNN's prediction from (z_<=t, a_<=t), its mixture mean decoded to a frame;
    "reconstruction": the vision model's own reconstruction of frame t+1 (the floor of "rnn");
    "copy_last": frame t itself (the prediction that nothing changes).
    z_t is the encoder's mean, as in the series the MDN-RNN trains on.
    """
    images = frames.astype(np.float32) / 255.0
    mu = latent_means(vision_model, frames, batch_size)
    outputs = rnn([mu[None, :-1], np.asarray(actions, np.float32)[None, :-1]])
    predicted = mixture_mean(outputs["log_weights"], outputs["means"])[0].numpy()

    def decoded(z):
        return np.concatenate([vision_model.decode(z[start:start + batch_size]).numpy()
                               for start in range(0, len(z), batch_size)])

    def errors(guess):
        return np.mean(np.square(guess - images[1:]), axis=(1, 2, 3))

    return {"rnn": errors(decoded(predicted)), "reconstruction": errors(decoded(mu[1:])),
            "copy_last": errors(images[:-1])}


PREDICTION_EPISODES = 20  # held-out episodes the pixel error of the one-step predictions is averaged over


def prediction_pixel_errors(config, vision_model):
    """Means of one_step_frame_errors ("rnn", "reconstruction", "copy_last") over the first
    PREDICTION_EPISODES held-out episodes of the config's series, with the config's MDN-RNN and the
    given vision model: the measure that compares world models with different latent spaces.
    None if the MDN-RNN is not trained on the current series, or V, series and M do not match
    (world_model_mismatch: an M trained on another V's latents predicts nothing this V decodes)."""
    if not memory_trained(config) or world_model_mismatch(config):
        return None
    series, rnn = load_series(config), load_rnn(rnn_path(config))
    sums = {"rnn": [], "reconstruction": [], "copy_last": []}
    for name in series["episode"][series["held_out"]][:PREDICTION_EPISODES]:
        episode = load_episode(record_dir(config) / str(name), keys=["obs", "action"])
        errors = one_step_frame_errors(vision_model, rnn, episode["obs"][:config.max_frames],
                                       episode["action"][:config.max_frames])
        for key in sums:
            sums[key].append(errors[key])
    return {key: float(np.mean(np.concatenate(values))) for key, values in sums.items()}


def _prediction_figures(config, vision_model, series, held_out, folder):
    """PredictionFigures for the first held-out episode (frames from record/)."""
    index = int(np.flatnonzero(held_out)[0])
    length = int(series["length"][index])
    frames = load_episode(record_dir(config) / str(series["episode"][index]), keys=["obs"])["obs"]
    steps = np.linspace(0, length - 2, min(8, length - 1)).astype(int)
    return PredictionFigures(vision_model, frames,
                             series["mu"][index, :length].astype(np.float32),
                             series["action"][index, :length].astype(np.float32), steps, folder / "figures",
                             config.vision)


def rnn_epochs(config):
    """The MDN-RNN trains in epochs of rnn_validation_every steps, rnn_num_steps steps in all."""
    return math.ceil(config.rnn_num_steps / config.rnn_validation_every)


def rnn_checkpoint_dir(config):
    return vision_dir(config) / "rnn_checkpoint"


def rnn_checkpoint(config):
    """The MDN-RNN's TrainingCheckpoint; its input is series.npz (by SHA-256: a re-encoded series, of
    another vision model or of more episodes, is not resumed on)."""
    folder = rnn_checkpoint_dir(config)
    hint = (f"{series_path(config)} has changed since (re-encoded by a retrained vision model, or with more "
            f"episodes). To retrain the MDN-RNN on it, remove {folder} (rnn.keras is replaced when training ends), "
            "then rerun rnn_train.py")
    return TrainingCheckpoint(folder, config.checkpoint_seconds, inputs={"series": file_sha256(series_path(config))},
                              retrain_hint=hint)


def world_model_mismatch(config):
    """Why the config's V, series.npz and M do not belong together, in one line, or None: series.npz
    encoded by another vision model file than <vision>.keras, or the MDN-RNN trained on another
    series.npz than the current one (by the SHA-256 each recorded when it was made). A part without
    its record (a world model put together by hand) is not judged."""
    vision, series = model_path(config, config.vision), series_path(config)
    if not (vision.exists() and series.exists()):
        return None
    try:
        with np.load(series, allow_pickle=False) as stored:
            encoded_by = str(stored["vision_model"]) if "vision_model" in stored.files else None
    except (OSError, ValueError):
        return f"{series}: unreadable; run series.py --vision {config.vision} again"
    if encoded_by is not None and encoded_by != file_sha256(vision):
        return (f"{series} was encoded by another {vision.name} than the current one (retrained since): the MDN-RNN "
                f"belongs to the old one; rerun series.py --vision {config.vision}, then remove "
                f"{rnn_checkpoint_dir(config)} and rerun rnn_train.py (or pipeline.py, which does both)")
    if memory_stale(config):
        return (f"{rnn_path(config)} was trained on another {series.name} than the current one (re-encoded since): "
                f"remove {rnn_checkpoint_dir(config)} and rerun rnn_train.py (or pipeline.py)")
    return None


def memory_outputs(config):
    """Every file and folder the MDN-RNN stage of the config's vision model writes (for setting them aside)."""
    folder = vision_dir(config)
    return [rnn_path(config), rnn_checkpoint_dir(config), memory_metrics_path(config), initial_z_path(config),
            folder / "rnn_train.config", folder / "rnn_training_log.csv",
            *sorted((folder / "figures").glob("rnn_predictions_epoch_*.png"))]


def memory_stale(config):
    """True if the MDN-RNN's checkpoint records that it was trained on another series.npz than the current
    one (False without a checkpoint, a series, or a record of it)."""
    state = rnn_checkpoint_dir(config) / "checkpoint.json"
    try:
        trained_on = json.loads(state.read_text()).get("inputs", {}).get("series") if state.exists() else None
    except (OSError, ValueError):
        return False
    return trained_on is not None and series_path(config).exists() and trained_on != file_sha256(series_path(config))


def check_world_model(config):
    """Raise UserFacingError (one line: which part is stale, how to rebuild it) if V, series and M do not match."""
    mismatch = world_model_mismatch(config)
    if mismatch:
        raise UserFacingError(mismatch)


def memory_trained(config):
    """True if the MDN-RNN has been trained for rnn_num_steps on the current series and saved, with its metrics."""
    folder, path = vision_dir(config), series_path(config)
    if not (rnn_path(config).exists() and memory_metrics_path(config).exists() and path.exists()
            and settings_match(folder, "rnn_train.py", config, RNN_SETTINGS)):
        return False
    return rnn_checkpoint(config).epochs_done() >= rnn_epochs(config)


def _window(config):
    """Steps of a training or validation window: rnn_max_seq_len inputs and their next-step targets."""
    return config.rnn_max_seq_len + 1


def _validation(config, series):
    """The held-out episodes' validation windows (data.validation_windows), as M is validated on."""
    return validation_windows(series, np.flatnonzero(series["held_out"]), _window(config), seed=config.seed)


def _vision_model(config):
    return load_vision_model(model_path(config, config.vision), config.z_size)


def _with_action_usage(config, metrics, rnn, validation, vision_model):
    """metrics with action_usage (stages/action_usage.py) added, written to memory_metrics.json."""
    usage = action_usage(config, vision_model, rnn, validation)
    metrics = {**metrics, "action_usage": usage}
    write_json_atomic(memory_metrics_path(config), metrics)
    print(f"M's use of the actions: held-out NLL {usage['losses']['real']['z_nll']:.4f} with the real actions, "
          f"{usage['losses']['shuffled']['z_nll']:.4f} shuffled in time (gain {usage['z_nll_gain']:.4f})"
          + ("; frame change from coasting after 20 held steps, dream / real (V's reconstructions): " + ", ".join(
              f"{name} {value['dream']:.4f} / {value['real_reconstructed']:.4f}"
              for name, value in usage["responses"]["actions"].items() if name != "coast")
             if "responses" in usage else ""))
    return metrics


def memory_measured(config):
    """memory_trained, and its memory_metrics.json holds action_usage (an M trained before it existed does not:
    rnn_train.py adds it without retraining)."""
    if not memory_trained(config):
        return False
    try:
        return "action_usage" in json.loads(memory_metrics_path(config).read_text())
    except (OSError, ValueError):
        return False


def train_memory(config):
    """Train the MDN-RNN on the config's vision model's series (resuming a killed run); returns its metrics.
    An MDN-RNN already trained on this series is left as it is; one trained on another series is refused."""
    folder = vision_dir(config, config.vision)
    with stage_folder(folder, config, "rnn_train.py", RNN_SETTINGS):
        if memory_trained(config):
            metrics = json.loads(memory_metrics_path(config).read_text())
            if "action_usage" in metrics or world_model_mismatch(config):
                print(f"MDN-RNN on the {config.vision} series: already trained for {config.rnn_num_steps} steps; "
                      f"nothing to do (model {rnn_path(config)})")
                return metrics
            print(f"MDN-RNN on the {config.vision} series: already trained; measuring how much it uses the actions "
                  f"(new in {memory_metrics_path(config).name})")
            series = load_series(config)
            return _with_action_usage(config, metrics, load_rnn(rnn_path(config)), _validation(config, series),
                                      _vision_model(config))
        series = load_series(config)
        training, held_out = ~series["held_out"], series["held_out"]
        write_json_atomic(initial_z_path(config), {"mu": series["mu"][training, 0].astype(float).tolist(),
                                                      "logvar": series["logvar"][training, 0].astype(float).tolist()})
        validation, vision_model = _validation(config, series), _vision_model(config)
        variance = baseline_variance(series["mu"][training], series["logvar"][training], series["length"][training])
        baseline = baseline_nll(validation["z"], validation["mu"], validation["mask"], variance)
        keras.utils.set_random_seed(config.seed)
        model = build_rnn(config)
        checkpoint = rnn_checkpoint(config)
        initial_epoch = checkpoint.restore(model)
        truncate_log(folder / "rnn_training_log.csv", initial_epoch)
        epochs = rnn_epochs(config)
        print(f"MDN-RNN on {config.vision} series: {int(training.sum())} training episodes, {int(held_out.sum())} "
              f"held out ({len(validation['mu'])} windows); {epochs} epochs of {config.rnn_validation_every} steps; "
              f"baseline z_(t+1) = mu_t: held-out NLL {baseline:.4f}; "
              + (f"resuming after epoch {initial_epoch}" if initial_epoch else "starting"))
        callbacks = [  # the checkpoint last: an epoch it records has its log row and figure written
            BaselineInLog(baseline),
            keras.callbacks.CSVLogger(folder / "rnn_training_log.csv", append=True),
            keras.callbacks.TensorBoard(folder / "tensorboard" / "rnn", write_graph=False),
            keras.callbacks.TerminateOnNaN(),
            _prediction_figures(config, vision_model, series, held_out, folder),
            checkpoint,
        ]
        history = model.fit(
            sequence_dataset(series, np.flatnonzero(training), _window(config), config.rnn_batch_size,
                             seed=config.seed + initial_epoch),
            epochs=epochs, initial_epoch=initial_epoch, steps_per_epoch=config.rnn_validation_every,
            validation_data=tf.data.Dataset.from_tensor_slices(validation).batch(config.rnn_batch_size),
            callbacks=callbacks, shuffle=False, verbose=keras_verbosity())
        losses = history.history.get("loss", [])
        if losses and not np.isfinite(losses[-1]):
            raise UserFacingError(f"MDN-RNN training diverged (loss {losses[-1]}); {checkpoint.folder} holds the "
                                  "last finite state; lower rnn_learning_rate and rerun")
        with atomic_path(rnn_path(config)) as temporary:
            model.save(temporary)
        evaluation = model.evaluate(tf.data.Dataset.from_tensor_slices(validation).batch(config.rnn_batch_size),
                                    return_dict=True, verbose=0)
        metrics = {"vision": config.vision, "val_z_nll": evaluation["z_nll"], "val_baseline_nll": baseline,
                   **{f"val_{key}": value for key, value in evaluation.items() if key in ("reward_loss", "done_loss")}}
        metrics = _with_action_usage(config, metrics, model, validation, vision_model)
    print(f"held-out NLL per latent dimension: MDN-RNN {metrics['val_z_nll']:.4f}, baseline z_(t+1) = mu_t "
          f"{baseline:.4f}\nmodel {rnn_path(config)}; log {folder / 'rnn_training_log.csv'}; "
          f"initial z {initial_z_path(config)}; figures {folder / 'figures'}")
    return metrics

