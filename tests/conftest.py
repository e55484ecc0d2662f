"""Shared fixtures: tiny configs in temporary folders (never the user's results/)."""

import importlib.util
import shutil
from pathlib import Path

import common.tensorflow_settings  # noqa: F401  (first: TensorFlow reads its settings when imported)

# isort: split
import pytest

from common.config import parse_config

SMOKE_CONFIG = Path(__file__).resolve().parents[1] / "WorldModels" / "configs" / "smoke.config"


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


@pytest.fixture
def make_config(tmp_path):
    """make_config(--key value ...) -> the smoke config, with results under tmp_path and overrides applied."""
    return config_factory(tmp_path / "results")


@pytest.fixture
def tiny_config(make_config):
    """Short episodes, two workers: a real extract takes seconds."""
    return make_config("--num_episodes", 4, "--max_frames", 30, "--min_frames", 5, "--num_workers", 2)


@pytest.fixture(scope="session")
def local_ray():
    """One local Ray instance (2 CPUs) for the whole session, as parallel.py keeps one per process."""
    if importlib.util.find_spec("ray") is None:
        pytest.skip("ray is not installed (pip install -r requirements-cluster.txt): the Ray backend is not tested")
    import ray

    from common.parallel import RAY_RUNTIME_ENV
    # Test tasks live in tests/, outside Ray's copy of WorldModels/: local workers find them on PYTHONPATH.
    tests_dir = str(Path(__file__).resolve().parent)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING",
             runtime_env={**RAY_RUNTIME_ENV, "env_vars": {"PYTHONPATH": tests_dir}})
    yield ray
    ray.shutdown()
