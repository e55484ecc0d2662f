"""Shared fixtures: tiny configs in temporary folders (never the user's results/)."""

import shutil
import struct
import zipfile
from pathlib import Path

import common.tensorflow_settings  # noqa: F401  (first: TensorFlow reads its settings when imported)

# isort: split
import numpy as np
import pytest

from common.config import parse_config
from common.files import write_json_atomic
from common.layout import vision_dir

SMOKE_CONFIG = Path(__file__).resolve().parents[1] / "WorldModels" / "configs" / "smoke.config"
RUN_RECORDS = Path(__file__).resolve().parents[1] / "docs" / "runs"  # the committed records of laptop runs


def config_factory(results, *base):
    """make(--key value ...) -> the smoke config with results under `results`, `base` and then the overrides."""
    def make(*overrides):
        return parse_config(["-c", str(SMOKE_CONFIG), "--results_dir", str(results), *map(str, base),
                             *map(str, overrides)])
    return make


def copied_results(prepared, tmp_path, *base):
    """config_factory over this test's own copy of a results folder a module fixture prepared once."""
    shutil.copytree(prepared, tmp_path / "results", dirs_exist_ok=True)
    return config_factory(tmp_path / "results", *base)


def kill_after_epoch(monkeypatch, callback_class, epoch):
    """Make a fit() callback's on_epoch_end raise KeyboardInterrupt (a kill) right after its own work at
    `epoch` (0-based): the callbacks after it in the list, such as the checkpoint, do not run."""
    real = callback_class.on_epoch_end

    def killed(self, index, logs=None):
        real(self, index, logs)
        if index == epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(callback_class, "on_epoch_end", killed)


def save_untrained_world_model(config):
    """An untrained VAE (z 4) and MDN-RNN (LSTM 8, reward and done heads) in config's vae/ folder, with
    initial_z.json: enough world model for train.py and evaluate.py on tiny configs."""
    from rnn.rnn import MDNRNN
    from vae.vae import ConvVAE

    folder = vision_dir(config)
    folder.mkdir(parents=True)
    vision_model = ConvVAE(4, 0.5, seed=0)
    vision_model.build()
    vision_model.save(folder / "vae.keras")
    rnn = MDNRNN(4, 8, 3, predict_reward=True, predict_done=True, seed=0)
    rnn.build()
    rnn.save(folder / "rnn.keras")
    write_json_atomic(folder / "initial_z.json", {"mu": np.zeros((3, 4)).tolist(), "logvar": np.zeros((3, 4)).tolist()})


@pytest.fixture
def make_config(tmp_path):
    """make_config(--key value ...) -> the smoke config, with results under tmp_path and overrides applied."""
    return config_factory(tmp_path / "results")


@pytest.fixture
def tiny_config(make_config):
    """Short episodes, two workers: a real extract takes seconds."""
    return make_config("--num_episodes", 4, "--max_frames", 30, "--min_frames", 5, "--num_workers", 2)


def corrupt_frames(path):
    """Flip bytes in the middle of the compressed obs array of an npz file: its CRC no longer matches."""
    with zipfile.ZipFile(path) as archive:
        member = archive.getinfo("obs.npy")
    data = bytearray(path.read_bytes())
    name_length, extra_length = struct.unpack("<HH", data[member.header_offset + 26:member.header_offset + 30])
    middle = member.header_offset + 30 + name_length + extra_length + member.compress_size // 2
    data[middle:middle + 8] = bytes(255 - byte for byte in data[middle:middle + 8])
    path.write_bytes(bytes(data))
