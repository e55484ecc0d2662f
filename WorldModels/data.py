"""tf.data pipelines over episode files, used by every training stage.

Frames are streamed: a few episode files are open at a time (interleave), their frames mixed in a
shuffle buffer, so memory is bounded by `cycle_length` episodes plus `shuffle_buffer` frames,
however many episodes there are.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow's INFO lines are noise for a researcher

import numpy as np
import tensorflow as tf

from episodes import FRAME_SHAPE, load_episode


def _load_obs(path):
    """numpy side of the pipeline: the obs array of one episode file (errors name the file)."""
    return load_episode(path.decode(), keys=["obs"])["obs"]


def _episode_frames(path):
    obs = tf.numpy_function(_load_obs, [path], tf.uint8, stateful=False)
    return tf.data.Dataset.from_tensor_slices(tf.ensure_shape(obs, (None, *FRAME_SHAPE)))


def frame_dataset(paths, batch_size, shuffle_buffer=10_000, cycle_length=8, seed=None,
                  shuffle=True, repeat=False, drop_remainder=False):
    """Batches of frames from episode files: float32 (batch, 64, 64, 3) in [0, 1].

    paths: episode files (validate them first with episodes.list_episodes). With shuffle, the
    file order is reshuffled every epoch and frames pass through a shuffle buffer; without it,
    frames come in file order (for evaluation). Errors reading a file name the file.
    """
    paths = [str(path) for path in paths]
    if not paths:
        raise ValueError("frame_dataset needs at least one episode file")
    files = tf.data.Dataset.from_tensor_slices(paths)
    if shuffle:
        files = files.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        files = files.repeat()
    if shuffle:
        # Round-robin over cycle_length open episodes, read in parallel, then a frame-level shuffle.
        frames = files.interleave(_episode_frames, cycle_length=min(cycle_length, len(paths)), block_length=1,
                                  num_parallel_calls=tf.data.AUTOTUNE, deterministic=seed is not None)
        frames = frames.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    else:
        frames = files.flat_map(_episode_frames)
    batches = frames.batch(batch_size, drop_remainder=drop_remainder)
    batches = batches.map(lambda batch: tf.cast(batch, tf.float32) / 255.0, num_parallel_calls=tf.data.AUTOTUNE)
    return batches.prefetch(tf.data.AUTOTUNE)


def load_frames(paths, max_frames=None):
    """All frames of `paths` in file order as one uint8 array (N, 64, 64, 3), at most max_frames.

    For small held-out sets (validation figures, metrics); training streams with frame_dataset.
    """
    chunks, total = [], 0
    for path in paths:
        obs = load_episode(path, keys=["obs"])["obs"]
        chunks.append(obs)
        total += len(obs)
        if max_frames is not None and total >= max_frames:
            break
    frames = np.concatenate(chunks)
    return frames[:max_frames] if max_frames is not None else frames
