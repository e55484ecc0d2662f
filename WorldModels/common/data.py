"""tf.data pipelines over episode files, used by every training stage.

Frames are streamed: a few episode files are read at a time (interleave), their frames mixed in a
shuffle buffer, so memory is bounded, however many episodes there are: a few times `cycle_length`
episodes in flight (read-ahead included; ~300 MB of 1000-frame episodes at the default 8) plus
`shuffle_buffer` frames (12 KB each).
"""

import hashlib

import common.tensorflow_settings  # noqa: F401  (first: TensorFlow reads its settings when imported)

# isort: split
import numpy as np
import tensorflow as tf

from common.episodes import FRAME_SHAPE, EpisodeFileError, load_episode

# EpisodeFileErrors met by tf.data's readers, by file. Raised inside tf.numpy_function, an error would
# reach the user wrapped in TensorFlow's OpError, after TensorFlow's own log lines with its traceback; so
# a reader records it, hands tf.data an episode of no frames, and the Python side raises it
# (raise_read_failures, for the files of its own pipeline).
_read_failures = {}


def _load_obs(path):
    """numpy side of the pipeline: the obs array of one episode file; a damaged file gives no frames and
    is recorded for raise_read_failures."""
    try:
        return load_episode(path.decode(), keys=["obs"])["obs"]
    except EpisodeFileError as error:
        _read_failures.setdefault(path.decode(), error)
        return np.zeros((0, *FRAME_SHAPE), np.uint8)


def raise_read_failures(paths):
    """Raise the EpisodeFileError (one line naming the file) of the first of `paths` (a pipeline's
    episode files) that its tf.data readers found damaged, if any."""
    for path in map(str, paths):
        if path in _read_failures:
            raise _read_failures.pop(path)


def _forget_read_failures(paths):
    """A new pipeline over `paths` judges them afresh (a file may have been replaced since)."""
    for path in map(str, paths):
        _read_failures.pop(path, None)


class ReadFailures(tf.keras.callbacks.Callback):
    """Stops fit() with the error of a damaged episode file among `paths` (its frame_dataset's) that
    tf.data met while reading (raise_read_failures)."""

    def __init__(self, paths):
        super().__init__()
        self.paths = [str(path) for path in paths]

    def on_train_batch_end(self, batch, logs=None):
        raise_read_failures(self.paths)

    def on_test_batch_end(self, batch, logs=None):
        raise_read_failures(self.paths)


def _episode_frames(path):
    obs = tf.numpy_function(_load_obs, [path], tf.uint8, stateful=False)
    return tf.data.Dataset.from_tensor_slices(tf.ensure_shape(obs, (None, *FRAME_SHAPE)))


def frame_dataset(paths, batch_size, shuffle_buffer=10_000, cycle_length=8, seed=None, repeat=False,
                  drop_remainder=False):
    """Shuffled batches of frames from episode files, for training: float32 (batch, 64, 64, 3) in [0, 1].

    paths: episode files (validate them first with episodes.list_episodes). The file order is
    reshuffled every epoch, frames of cycle_length episodes are interleaved and pass through a
    frame shuffle buffer. A damaged file gives no frames; raise_read_failures(paths) (called after every
    batch by the ReadFailures(paths) callback) raises its error, naming the file.
    """
    paths = [str(path) for path in paths]
    if not paths:
        raise ValueError("frame_dataset needs at least one episode file")
    _forget_read_failures(paths)
    files = tf.data.Dataset.from_tensor_slices(paths).shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        files = files.repeat()
    # Round-robin over cycle_length open episodes, read in parallel, then a frame-level shuffle.
    frames = files.interleave(_episode_frames, cycle_length=min(cycle_length, len(paths)), block_length=1,
                              num_parallel_calls=tf.data.AUTOTUNE, deterministic=seed is not None)
    frames = frames.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    batches = frames.batch(batch_size, drop_remainder=drop_remainder)
    return batches.map(to_unit_float, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def episode_dataset(paths):
    """Each episode's frames, uint8 (T, 64, 64, 3), in file order, read ahead in parallel.

    For encoding whole episodes (series.py): whole episodes pass through tf.data, not single
    frames, so the pipeline costs almost nothing beside the encoder.
    """
    _forget_read_failures(paths)
    files = tf.data.Dataset.from_tensor_slices([str(path) for path in paths])
    episodes = files.map(lambda path: tf.ensure_shape(tf.numpy_function(_load_obs, [path], tf.uint8, stateful=False),
                                                       (None, *FRAME_SHAPE)),
                         num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return episodes.prefetch(2)


def to_unit_float(frames):
    """uint8 frames -> float32 in [0, 1], the vision models' input."""
    return tf.cast(frames, tf.float32) / 255.0


def array_dataset(frames, batch_size):
    """Batches of in-memory uint8 frames (a held-out set) as float32 in [0, 1], in order."""
    return tf.data.Dataset.from_tensor_slices(frames).batch(batch_size).map(to_unit_float)


def load_frames(paths, count):
    """`count` frames spread evenly over the episodes `paths` (evenly spaced within each), uint8.

    For held-out sets (validation, figures, metrics): frames from every episode and every part of
    it, not just the zoom-in at the start of the first few. Training streams with frame_dataset.
    """
    return load_steps(paths, count)["obs"]


def load_steps(paths, count, keys=("obs",)):
    """load_frames for several per-step arrays of the episodes (obs, speed, on_road, ...): a dict of
    the same `count` steps of each key."""
    per_episode = -(-count // len(paths))
    chunks = {key: [] for key in keys}
    for path in paths:
        arrays = load_episode(path, keys=list(keys))
        steps = np.linspace(0, len(arrays[keys[0]]) - 1, min(per_episode, len(arrays[keys[0]]))).astype(int)
        for key in keys:
            chunks[key].append(arrays[key][steps])
    steps = {key: np.concatenate(values) for key, values in chunks.items()}
    picks = np.linspace(0, len(steps[keys[0]]) - 1, min(count, len(steps[keys[0]]))).astype(int)
    return {key: values[picks] for key, values in steps.items()}


def split_episodes(episodes, holdout_fraction, seed):
    """(training, held-out) lists of EpisodeInfo; the same split for V and M.

    An episode is held out when a hash of (seed, file name) falls below holdout_fraction, so the
    split of the episodes already there does not change when more are collected; at least one
    episode is held out and at least one trains.
    """
    if len(episodes) < 2:
        raise EpisodeFileError(f"{episodes[0].path.parent if episodes else 'record/'}: "
                               "training needs at least 2 episodes (one is held out)")

    def score(info):
        digest = hashlib.sha256(f"{seed}:{info.path.name}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    ranked = sorted(episodes, key=score)
    held_out = [info for info in ranked if score(info) < holdout_fraction] or ranked[:1]
    held_out = held_out[:len(episodes) - 1]
    training = [info for info in episodes if info not in held_out]
    return training, sorted(held_out, key=lambda info: info.path.name)


SERIES_KEYS = ("mu", "logvar", "action", "reward", "done")


def _padded(array, steps):
    """Pad axis 1 (time) of an array to `steps` with zeros (False for bool)."""
    extra = steps - array.shape[1]
    return array if extra <= 0 else np.pad(array, [(0, 0), (0, extra)] + [(0, 0)] * (array.ndim - 2))


def sequence_dataset(series, episodes, window, batch_size, seed, repeat=True):
    """Training batches of `window` consecutive steps from the given episodes of a series.

    series: dict of arrays (memory.SERIES_FORMAT); episodes: indices. Each element is a random
    window of one episode (start uniform over the places where it lies within the episode, when
    the episode is long enough), as a dict of (batch, window, ...) arrays: mu, logvar, action,
    reward, done, and mask (True on the episode's real steps). Windows come from numpy through
    tf.numpy_function, so a series larger than TensorFlow's 2 GB constant limit works too.
    """
    lengths = series["length"][episodes].astype(np.int64)
    # a window may start at length - window + 1, so it can reach one step past the last frame
    steps = max(window, series["mu"].shape[1] + 1)
    arrays = {key: _padded(series[key][episodes], steps) for key in SERIES_KEYS}
    # float32 windows (the series stores float16): a float16 tensor in a graph makes oneDNN print a warning
    dtypes = [tf.float32, tf.float32, tf.float32, tf.float32, tf.bool, tf.bool]

    def crop(index, draw):
        length = lengths[index]
        start = draw % (max(length - window + 1, 0) + 1)
        window_arrays = [arrays[key][index, start:start + window] for key in SERIES_KEYS]
        window_arrays = [array.astype(np.float32) if array.dtype == np.float16 else array for array in window_arrays]
        return (*window_arrays, np.arange(start, start + window) < length)

    def to_dict(index, draw):
        tensors = tf.numpy_function(crop, [index, draw], dtypes, stateful=False)
        shapes = {"mu": (window, None), "logvar": (window, None), "action": (window, 3), "reward": (window,),
                  "done": (window,), "mask": (window,)}
        return {key: tf.ensure_shape(tensor, shapes[key]) for key, tensor in zip(shapes, tensors, strict=True)}

    indices = tf.data.Dataset.range(len(episodes)).shuffle(len(episodes), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        indices = indices.repeat()
    draws = tf.data.Dataset.random(seed=seed)  # one random draw per window: its start
    windows = tf.data.Dataset.zip(indices, draws).map(to_dict, num_parallel_calls=tf.data.AUTOTUNE)
    return windows.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def validation_windows(series, episodes, window, seed):
    """Every step of the given episodes cut into consecutive windows of `window` steps (each
    overlapping the next by one step, so every transition is a target once): a dict of arrays
    (windows, window, ...) with mask, and z: latents sampled once from N(mu, exp(logvar)) with
    `seed`, the same kind of target the model trains on, fixed so that validation is repeatable."""
    pieces = {key: [] for key in (*SERIES_KEYS, "mask")}
    for index in episodes:
        length = int(series["length"][index])
        for start in range(0, max(length - 1, 1), window - 1):
            for key in SERIES_KEYS:
                piece = series[key][index:index + 1, start:start + window]
                pieces[key].append(_padded(piece, window)[0])
            pieces["mask"].append(np.arange(start, start + window) < length)
    windows = {key: np.stack(values) for key, values in pieces.items()}
    windows = {key: value.astype(np.float32) if value.dtype == np.float16 else value for key, value in windows.items()}
    mu, logvar = windows["mu"], windows["logvar"]
    windows["z"] = mu + np.exp(0.5 * logvar) * np.random.default_rng(seed).standard_normal(mu.shape, np.float32)
    return windows
