"""Episode files: one compressed `.npz` per rollout, in the TF2 World Models port's format.

Keys (T = number of steps):
    obs     uint8   (T, 64, 64, 3)  frame seen before the action
    action  float16 (T, 3)          steer, gas, brake
    reward  float16 (T,)            reward received after the action
    done    bool    (T,)            True on the episode's last step
    N       uint16  (T,)            number of tiles of the track
    speed   float16 (T,)            the car's speed when the frame was seen (env.driving_state)
    on_road bool    (T,)            whether a wheel touched the road then
Only obs and action are required: the original World Models' files hold only those, and other
implementations' files (named by a random integer) hold obs, action, reward, done and maybe N;
readers accept them. Files written by extract.py also hold what regenerates the episode: `seed`
(uint64), `batch_seeds` (uint64: the seeds played in the same call; with the original and
controller policies, the episodes played together in lockstep), `policy` (str), `settings` (str:
the config's data keys; the whole config, with absolute paths, for the controller policy),
`tiles_visited` (int64) and, for the controller policy, `world_model` (str: the SHA-256 of the
controller, vision model and MDN-RNN files). Files are always read with allow_pickle=False.
"""

import io
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import UserFacingError
from common.files import write_bytes_atomic

FRAME_SHAPE = (64, 64, 3)  # a frame: the 96x96 render above the dashboard, resized
ACTION_SIZE = 3  # CarRacing's action: steer, gas, brake
# key -> (shape after the leading T, accepted dtype); obs and action are required.
FORMAT = {
    "obs": (FRAME_SHAPE, np.uint8),
    "action": ((3,), np.floating),
    "reward": ((), np.floating),
    "done": ((), np.bool_),
    "N": ((), np.integer),
    "speed": ((), np.floating),
    "on_road": ((), np.bool_),
}
REQUIRED_KEYS = ("obs", "action")
SCALAR_ALLOWED = ("N",)  # keys that may hold one number instead of one per step
FINITE_KEYS = ("action", "reward", "speed")  # checked by every reader, whatever keys it asks for


class EpisodeFileError(UserFacingError):
    """An episode file that cannot be used; the message starts with the file's path."""


@dataclass(frozen=True)
class EpisodeInfo:
    path: Path
    length: int
    keys: tuple


def episode_bytes(obs, action, reward, done, track_tiles, speed=None, on_road=None, **metadata):
    """Pack one episode into compressed npz bytes in the documented format (workers send these);
    speed and on_road (per step) are stored when given, metadata (scalars) as they are."""
    length = len(obs)
    arrays = {
        "obs": np.asarray(obs, dtype=np.uint8),
        "action": np.asarray(action, dtype=np.float16).reshape(length, 3),
        "reward": np.asarray(reward, dtype=np.float16).reshape(length),
        "done": np.asarray(done, dtype=bool).reshape(length),
        "N": np.full(length, track_tiles, dtype=np.uint16),
    }
    if speed is not None:
        arrays["speed"] = np.asarray(speed, dtype=np.float16).reshape(length)
    if on_road is not None:
        arrays["on_road"] = np.asarray(on_road, dtype=bool).reshape(length)
    arrays.update({key: np.asarray(value) for key, value in metadata.items()})
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def save_episode(path, obs, action, reward, done, track_tiles, **extra):
    """Write one episode atomically (extra: episode_bytes's speed, on_road and metadata); returns the path."""
    return write_bytes_atomic(path, episode_bytes(obs, action, reward, done, track_tiles, **extra))


def _check_arrays(path, shapes_and_dtypes, required=REQUIRED_KEYS):
    """Check {key: (shape, dtype)} against FORMAT (all arrays share the length T); return T."""
    missing = [key for key in required if key not in shapes_and_dtypes]
    if missing:
        raise EpisodeFileError(f"{path}: missing key(s) {', '.join(missing)}; "
                               f"has {', '.join(sorted(shapes_and_dtypes))}")
    length = None  # T, taken from the first array in FORMAT order (obs when present)
    for key, (trailing_shape, accepted_dtype) in FORMAT.items():
        if key not in shapes_and_dtypes:
            continue
        shape, dtype = tuple(shapes_and_dtypes[key][0]), shapes_and_dtypes[key][1]
        if key in SCALAR_ALLOWED and shape == ():  # one number for the whole episode, as the original stores N
            shape = (length, *trailing_shape)
        if length is None and len(shape) == 1 + len(trailing_shape):
            length = shape[0]
        if shape != (length, *trailing_shape):
            expected = "x".join(str(n) for n in (length if length is not None else "T", *trailing_shape))
            raise EpisodeFileError(f"{path}: {key} has shape {shape}, expected {expected}")
        if not np.issubdtype(dtype, accepted_dtype):
            raise EpisodeFileError(f"{path}: {key} has dtype {dtype}, expected {accepted_dtype.__name__}")
    if not length:
        raise EpisodeFileError(f"{path}: the episode holds no steps")
    return int(length)


def _read_headers(path):
    """{key: (shape, dtype)} from the npy headers inside the npz, without decompressing the data."""
    headers = {}
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            with archive.open(name) as member:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(member)
            if dtype.hasobject:
                raise ValueError(f"{name} holds Python objects, which are never loaded")
            headers[name.removesuffix(".npy")] = (shape, dtype)
    return headers


# What a damaged file raises (MemoryError: a header claiming an absurd shape).
_READ_ERRORS = (OSError, EOFError, ValueError, KeyError, MemoryError, zipfile.BadZipFile, zlib.error)


def _unreadable(path, error):
    """The EpisodeFileError for a damaged file; a PermissionError is not damage and is raised as is."""
    if isinstance(error, PermissionError):
        raise error
    return EpisodeFileError(f"{path}: unreadable ({type(error).__name__}: {error})")


def check_episode(path, full=True):
    """Validate one episode file; return its EpisodeInfo or raise EpisodeFileError naming the file.

    full=False reads only the array headers (keys, shapes, dtypes; catches truncated files, which
    lose the zip directory at their end). full=True also decompresses every array, checking the
    CRCs, which catches corrupted bytes anywhere; it costs ~10 ms per 1000-frame episode.
    """
    path = Path(path)
    if full:
        arrays = load_episode(path)
        return EpisodeInfo(path, len(arrays["obs"]), tuple(sorted(arrays)))
    try:
        headers = _read_headers(path)
    except _READ_ERRORS as error:
        raise _unreadable(path, error) from None
    return EpisodeInfo(path, _check_arrays(path, headers), tuple(sorted(headers)))


def load_episode(path, keys=None):
    """Load an episode's arrays (all, or only `keys`) as a dict; raise EpisodeFileError naming the file.

    Checks the format of what is loaded, and that the file's actions, rewards and speeds are finite
    numbers, even when only other keys are asked for (a frame reader must not train on a broken episode).
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            wanted = archive.files if keys is None else keys
            arrays = {key: archive[key] for key in wanted}
            if keys is not None and any(key in FORMAT for key in keys):
                checked = {key: archive[key] for key in FINITE_KEYS if key in archive.files and key not in arrays}
            else:
                checked = {}
    except KeyError as error:
        raise EpisodeFileError(f"{path}: missing key {error}") from None
    except _READ_ERRORS as error:
        raise _unreadable(path, error) from None
    not_arrays = [key for key, value in arrays.items() if not isinstance(value, np.ndarray)]
    if not_arrays:  # np.load returns other members of the zip as raw bytes
        raise EpisodeFileError(f"{path}: {', '.join(not_arrays)} is not a .npy array")
    if keys is None or any(key in FORMAT for key in keys):  # not for metadata alone (seed, settings)
        _check_arrays(path, {key: (value.shape, value.dtype) for key, value in arrays.items()},
                      required=REQUIRED_KEYS if keys is None else keys)
    for key, values in {**checked, **arrays}.items():
        if key in FINITE_KEYS and not np.all(np.isfinite(values)):
            raise EpisodeFileError(f"{path}: {key} holds NaN or infinite values")
    return arrays


def check_values(path):
    """Raise EpisodeFileError naming the file if its actions, rewards or speeds are not all finite
    (reads only those small arrays; the frame readers check them too, mid-training)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            present = [key for key in FINITE_KEYS if key in archive.files]
    except _READ_ERRORS as error:
        raise _unreadable(path, error) from None
    if present:
        load_episode(path, keys=present)


def list_episodes(record_dir, full=False):
    """All episode files in `record_dir`, sorted, each checked; returns a list of EpisodeInfo.

    Raises EpisodeFileError naming the first bad file, or the folder if it holds no episodes.
    """
    record_dir = Path(record_dir)
    paths = sorted(p for p in record_dir.glob("*.npz") if not p.name.startswith("."))
    if not paths:
        raise EpisodeFileError(f"{record_dir}: no episode files (*.npz); run extract.py first")
    return [check_episode(path, full=full) for path in paths]
