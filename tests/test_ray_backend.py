"""backend=ray: the task runner, extract.py and train.py give what the local backend gives.

One test, on one Ray instance: starting Ray and its TensorFlow workers costs about 20 s, and when the
suite's two test processes each started their own beside the other tests, the Ray tests took over
four minutes together. The checks run in turn on the same instance, as a user's session would.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.parallel import RAY_RUNTIME_ENV, run_tasks
from conftest import SMOKE_CONFIG, save_untrained_world_model
from parallel_tasks import fail_first_time, square
from stages.evolution import train_controller
from stages.rollouts import extract
from test_evolution import TINY, log_rows
from test_extract import episode_files
from test_parallel import runner_config

pytestmark = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                reason="ray is not installed (pip install -r requirements-cluster.txt)")

TESTS = Path(__file__).resolve().parent
EPISODES = ["--num_episodes", 2, "--max_frames", 20, "--min_frames", 5, "--num_workers", 2]


@pytest.fixture(scope="module")
def ray_instance():
    """A local Ray instance with 2 CPUs; its address, for a process that joins it as it would a cluster."""
    import ray

    # Test tasks live in tests/, outside Ray's copy of WorldModels/: local workers find them on PYTHONPATH.
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING",
             runtime_env={**RAY_RUNTIME_ENV, "env_vars": {"PYTHONPATH": str(TESTS)}})
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def check_tasks_run_and_retry(tmp_path):
    config = runner_config(backend="ray", timeout=5.0)
    assert dict(run_tasks(square, [(n,) for n in range(5)], config)) == {(n,): n * n for n in range(5)}
    reports = []
    tasks = [(str(tmp_path), value, how) for value, how in enumerate(["raise", "hang"])]
    assert dict(run_tasks(fail_first_time, tasks, config, report=reports.append)) == {t: t[1] * 10 for t in tasks}
    assert len(reports) == 2  # one failure each, then a retry that works


def check_extract_collects_the_same_episodes(make_config, tmp_path, backend="gymnasium"):
    """The same episode files from local workers and Ray tasks, in the simulator `backend`."""
    local = make_config(*EPISODES, "--env_backend", backend, "--results_dir", tmp_path / f"local_{backend}")
    extract(local)
    on_ray = make_config(*EPISODES, "--env_backend", backend, "--backend", "ray",
                         "--results_dir", tmp_path / f"ray_{backend}")
    extract(on_ray)
    for local_file, ray_file in zip(episode_files(local), episode_files(on_ray), strict=True):
        assert local_file.read_bytes() == ray_file.read_bytes()


def check_the_controller_trains(make_config, tmp_path):
    config = make_config(*TINY, "--results_dir", tmp_path / "controller_results", "--backend", "ray")
    save_untrained_world_model(config)
    best = train_controller(config)
    assert [row["generation"] for row in log_rows(config)] == ["1"] and np.isfinite(best["score"])


def check_a_script_joins_a_running_cluster(address, tmp_path):
    """extract.py from the shell with --ray_address, as on a cluster: it uploads WorldModels/ and runs there."""
    command = [sys.executable, str(SMOKE_CONFIG.parents[1] / "extract.py"), "-c", str(SMOKE_CONFIG),
               "--results_dir", str(tmp_path / "cluster"), *map(str, EPISODES), "--backend", "ray",
               "--ray_address", address, "--extract_policy", "white"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "collected 2 episodes" in result.stdout
    assert len(list((tmp_path / "cluster" / "smoke" / "CarRacing-v3" / "record").glob("episode_*.npz"))) == 2


def test_the_ray_backend_gives_what_the_local_one_gives(ray_instance, make_config, tmp_path):
    check_tasks_run_and_retry(tmp_path)
    check_extract_collects_the_same_episodes(make_config, tmp_path)
    if importlib.util.find_spec("envpool"):  # a Ray task runs its own envpool environments
        check_extract_collects_the_same_episodes(make_config, tmp_path, "envpool")
    check_the_controller_trains(make_config, tmp_path)
    check_a_script_joins_a_running_cluster(ray_instance, tmp_path)
