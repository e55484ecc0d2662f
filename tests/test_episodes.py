"""Episode files: the format round-trips, and every kind of bad file is refused by name."""

import io
import zipfile

import numpy as np
import pytest

from common.episodes import EpisodeFileError, check_episode, list_episodes, load_episode, save_episode


def random_episode(length=12, seed=0):
    rng = np.random.default_rng(seed)
    return dict(obs=rng.integers(0, 256, (length, 64, 64, 3), dtype=np.uint8),
                action=rng.uniform(-1, 1, (length, 3)), reward=rng.normal(size=length),
                done=np.arange(length) == length - 1, track_tiles=287)


def write_npz(path, **arrays):
    np.savez_compressed(path, **arrays)
    return path


def test_saved_episode_round_trips_in_the_documented_format(tmp_path):
    episode = random_episode()
    path = save_episode(tmp_path / "e.npz", **episode, seed=np.int64(5), policy="white")
    loaded = load_episode(path)
    assert {k: (v.dtype, v.shape) for k, v in loaded.items() if k in ("obs", "action", "reward", "done", "N")} == {
        "obs": (np.uint8, (12, 64, 64, 3)), "action": (np.float16, (12, 3)), "reward": (np.float16, (12,)),
        "done": (np.bool_, (12,)), "N": (np.uint16, (12,))}
    np.testing.assert_array_equal(loaded["obs"], episode["obs"])
    np.testing.assert_allclose(loaded["action"], episode["action"], atol=1e-3)
    assert loaded["N"][0] == 287 and loaded["seed"] == 5 and str(loaded["policy"]) == "white"
    assert check_episode(path, full=True).length == check_episode(path, full=False).length == 12
    assert not list(tmp_path.glob(".*")), "no temporary file may be left behind"


def test_the_originals_files_with_only_obs_and_action_are_accepted(tmp_path):
    episode = random_episode()
    path = write_npz(tmp_path / "123456.npz", obs=episode["obs"], action=episode["action"].astype(np.float32))
    for full in (True, False):
        info = check_episode(path, full=full)
        assert info.length == 12 and info.keys == ("action", "obs")


@pytest.mark.parametrize("change, message", [
    (lambda e: e.pop("action"), "missing key(s) action"),
    (lambda e: e.update(obs=e["obs"].astype(np.float32)), "obs has dtype float32, expected uint8"),
    (lambda e: e.update(obs=e["obs"][:, :32]), "obs has shape (12, 32, 64, 3)"),
    (lambda e: e.update(action=e["action"][:5]), "action has shape (5, 3), expected 12x3"),
    (lambda e: e.update(reward=e["reward"][:, None]), "reward has shape (12, 1)"),
    (lambda e: e.update(done=e["done"].astype(np.float32)), "done has dtype float32, expected bool"),
    (lambda e: e.update({key: e[key][:0] for key in ("obs", "action", "reward", "done")}), "holds no steps"),
])
@pytest.mark.parametrize("full", [True, False])
def test_wrong_keys_shapes_and_dtypes_name_the_file(tmp_path, change, message, full):
    episode = random_episode()
    episode.pop("track_tiles")
    change(episode)
    path = write_npz(tmp_path / "bad.npz", **episode)
    with pytest.raises(EpisodeFileError) as error:
        check_episode(path, full=full)
    assert str(error.value).startswith(str(path)) and message in str(error.value)


def test_truncated_file_is_refused_even_by_the_header_check(tmp_path):
    path = save_episode(tmp_path / "e.npz", **random_episode())
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    for full in (True, False):
        with pytest.raises(EpisodeFileError, match="e.npz: unreadable"):
            check_episode(path, full=full)


def test_corrupted_bytes_are_caught_by_the_full_check(tmp_path):
    path = save_episode(tmp_path / "e.npz", **random_episode())
    data = bytearray(path.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = bytes(64)
    path.write_bytes(bytes(data))
    with pytest.raises(EpisodeFileError, match="e.npz: unreadable"):
        check_episode(path, full=True)


def test_other_members_and_non_finite_values_are_refused(tmp_path):
    path = save_episode(tmp_path / "notes.npz", **random_episode())
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(EpisodeFileError, match="notes.npz: notes.txt is not a .npy array"):
        check_episode(path, full=True)
    episode = random_episode()
    episode["reward"][3] = np.nan
    path = save_episode(tmp_path / "nan.npz", **episode)
    with pytest.raises(EpisodeFileError, match="nan.npz: reward holds NaN"):
        check_episode(path, full=True)


def test_not_a_zip_and_pickled_objects_are_refused(tmp_path):
    text = tmp_path / "text.npz"
    text.write_text("not an archive")
    with pytest.raises(EpisodeFileError, match="text.npz"):
        check_episode(text, full=False)
    pickled = tmp_path / "pickled.npz"
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(pickled, "w") as archive:
        archive.writestr("obs.npy", buffer.getvalue())
    for full in (True, False):
        with pytest.raises(EpisodeFileError, match="pickled.npz"):
            check_episode(pickled, full=full)


def test_list_episodes_sorts_skips_temporaries_and_refuses_empty_folders(tmp_path):
    with pytest.raises(EpisodeFileError, match="no episode files"):
        list_episodes(tmp_path)
    for name in ("b.npz", "a.npz"):
        save_episode(tmp_path / name, **random_episode(length=4))
    (tmp_path / ".a.123.tmp.npz").write_bytes(b"half written")
    assert [info.path.name for info in list_episodes(tmp_path)] == ["a.npz", "b.npz"]
    (tmp_path / "c.npz").write_bytes(b"junk")
    with pytest.raises(EpisodeFileError, match="c.npz"):
        list_episodes(tmp_path)


def test_a_reader_of_frames_alone_still_refuses_non_finite_actions(tmp_path):
    episode = random_episode()
    episode["action"][2, 1] = np.nan
    path = save_episode(tmp_path / "nan_action.npz", **episode)
    with pytest.raises(EpisodeFileError, match="nan_action.npz: action holds NaN"):
        load_episode(path, keys=["obs"])  # what the vision models' frame reader asks for
    original = write_npz(tmp_path / "original.npz", obs=episode["obs"], action=np.zeros((12, 3)))
    assert load_episode(original, keys=["obs"])["obs"].shape == (12, 64, 64, 3)  # no reward: nothing to check


def test_the_number_of_tiles_may_be_one_number_for_the_episode(tmp_path):
    episode = random_episode()
    path = write_npz(tmp_path / "scalar_n.npz", obs=episode["obs"], action=episode["action"],
                     reward=episode["reward"], done=episode["done"], N=np.int64(287))
    assert check_episode(path, full=False).length == check_episode(path, full=True).length == 12
    with pytest.raises(EpisodeFileError, match="reward has shape"):  # only N may be one number
        check_episode(write_npz(tmp_path / "scalar_reward.npz", obs=episode["obs"], action=episode["action"],
                                reward=np.float32(1.0)), full=True)
