"""The tf.data frame pipeline: every frame once per epoch, scaled to [0, 1], shuffled, errors name the file."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from common.data import episode_dataset, frame_dataset, load_frames, raise_read_failures, split_episodes
from common.episodes import EpisodeFileError, EpisodeInfo, save_episode


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


def test_episode_dataset_streams_whole_episodes_in_file_order(tmp_path):
    paths = write_episodes(tmp_path, [3, 4, 2])
    episodes = [episode.numpy() for episode in episode_dataset(paths)]
    assert [len(episode) for episode in episodes] == [3, 4, 2] and episodes[0].dtype == np.uint8
    assert [int(frame[0, 0, 0]) for episode in episodes for frame in episode] == list(range(9))


def test_repeat_goes_on(tmp_path):
    paths = write_episodes(tmp_path, [3, 4])
    repeated = frame_dataset(paths, batch_size=5, repeat=True, drop_remainder=True, seed=1)
    ids = frame_ids(repeated.take(6))
    assert len(ids) == 30 and set(ids) == set(range(7))


def test_reshuffled_every_epoch(tmp_path):
    paths = write_episodes(tmp_path, [10, 10, 10])
    dataset = frame_dataset(paths, batch_size=30, shuffle_buffer=30, seed=3)
    assert frame_ids(dataset) != frame_ids(dataset)


def test_a_bad_file_in_the_stream_is_named_by_its_own_pipeline_only(tmp_path):
    paths = write_episodes(tmp_path, [4, 4])
    paths[1].write_bytes(b"not an episode")
    assert len(frame_ids(frame_dataset(paths, batch_size=2, seed=0))) == 4  # tf.data itself goes on, quietly
    raise_read_failures(paths[:1])  # another pipeline's files: nothing to say
    with pytest.raises(EpisodeFileError, match="e1.npz: unreadable"):
        raise_read_failures(paths)
    raise_read_failures(paths)  # said once


def test_load_frames_spreads_over_episodes_and_time(tmp_path):
    paths = write_episodes(tmp_path, [10, 10, 10])  # frame ids 0..9, 10..19, 20..29
    frames = load_frames(paths, 6)
    assert frames.shape == (6, 64, 64, 3) and frames.dtype == np.uint8
    ids = list(frames[:, 0, 0, 0])
    assert ids == sorted(ids) and len(set(ids)) == 6
    assert {i // 10 for i in ids} == {0, 1, 2}, "every episode contributes"
    assert max(ids) - min(ids) > 20, "from the start to the end, not just the first frames"
    assert len(load_frames(paths, 100)) == 30  # never more than there are


def infos(names):
    return [EpisodeInfo(Path("record") / name, 10, ("obs",)) for name in names]


def test_the_held_out_split_is_stable_as_episodes_are_added():
    few = infos(f"episode_{i:06d}.npz" for i in range(40))
    many = infos(f"episode_{i:06d}.npz" for i in range(400))
    training, held_out = split_episodes(few, 0.1, seed=0)
    assert len(training) + len(held_out) == 40 and not set(training) & set(held_out)
    assert 0 < len(held_out) < 12
    _, held_out_of_many = split_episodes(many, 0.1, seed=0)
    assert set(held_out) <= set(held_out_of_many), "collecting more never moves an episode into training"
    assert 20 < len(held_out_of_many) < 60
    assert split_episodes(few, 0.1, seed=1)[1] != held_out, "the seed chooses the split"


def test_at_least_one_episode_is_held_out_and_one_trains():
    training, held_out = split_episodes(infos(["a.npz", "b.npz"]), 0.01, seed=0)
    assert len(training) == len(held_out) == 1
    with pytest.raises(EpisodeFileError, match="at least 2 episodes"):
        split_episodes(infos(["a.npz"]), 0.1, seed=0)
