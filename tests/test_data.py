"""The tf.data frame pipeline: every frame once per epoch, scaled to [0, 1], shuffled, errors name the file."""

import numpy as np
import pytest
import tensorflow as tf

from data import frame_dataset, load_frames
from episodes import save_episode


def write_episodes(folder, lengths):
    """Episodes whose frames are filled with a unique value per frame, so frames can be counted."""
    paths, value = [], 0
    for index, length in enumerate(lengths):
        obs = np.zeros((length, 64, 64, 3), np.uint8)
        for step in range(length):
            obs[step] = value
            value += 1
        paths.append(save_episode(folder / f"e{index}.npz", obs, np.zeros((length, 3)), np.zeros(length),
                                  np.arange(length) == length - 1, 100))
    return paths


def frame_ids(dataset):
    return [int(round(v)) for batch in dataset for v in (batch.numpy()[:, 0, 0, 0] * 255)]


def test_each_frame_comes_once_per_epoch_as_float_in_unit_range(tmp_path):
    paths = write_episodes(tmp_path, [7, 5, 9])
    dataset = frame_dataset(paths, batch_size=4, shuffle_buffer=8, cycle_length=2, seed=0)
    batch = next(iter(dataset))
    assert batch.dtype == tf.float32 and batch.shape == (4, 64, 64, 3)
    assert 0.0 <= float(tf.reduce_min(batch)) and float(tf.reduce_max(batch)) <= 1.0
    ids = frame_ids(dataset)
    assert sorted(ids) == list(range(21))
    assert ids != list(range(21)), "training batches must be shuffled"


def test_unshuffled_dataset_keeps_file_order_and_repeat_goes_on(tmp_path):
    paths = write_episodes(tmp_path, [3, 4])
    assert frame_ids(frame_dataset(paths, batch_size=3, shuffle=False)) == list(range(7))
    repeated = frame_dataset(paths, batch_size=5, repeat=True, drop_remainder=True, seed=1)
    ids = frame_ids(repeated.take(6))
    assert len(ids) == 30 and set(ids) == set(range(7))


def test_reshuffled_every_epoch(tmp_path):
    paths = write_episodes(tmp_path, [10, 10, 10])
    dataset = frame_dataset(paths, batch_size=30, shuffle_buffer=30, seed=3)
    assert frame_ids(dataset) != frame_ids(dataset)


def test_a_bad_file_in_the_stream_is_named(tmp_path):
    paths = write_episodes(tmp_path, [4, 4])
    paths[1].write_bytes(b"not an episode")
    with pytest.raises(tf.errors.OpError, match="e1.npz"):
        frame_ids(frame_dataset(paths, batch_size=2, seed=0))


def test_load_frames_returns_the_first_frames_in_order(tmp_path):
    paths = write_episodes(tmp_path, [3, 4, 5])
    frames = load_frames(paths, max_frames=5)
    assert frames.shape == (5, 64, 64, 3) and frames.dtype == np.uint8
    assert list(frames[:, 0, 0, 0]) == [0, 1, 2, 3, 4]
