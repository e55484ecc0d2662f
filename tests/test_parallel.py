"""The worker runner: results, retries after exceptions, dead and hung workers (Ray: test_ray_backend.py)."""

import argparse
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.errors import UserFacingError
from common.parallel import TaskFailedError, run_tasks
from crash_on_import_tasks import double
from parallel_tasks import always_fail, fail_first_time, raise_own_timeout, raise_user_error, square


def runner_config(backend="local", timeout=60.0, retries=2):
    return argparse.Namespace(backend=backend, num_workers=2, worker_timeout=timeout, worker_max_retries=retries,
                              ray_address="")


def test_every_task_returns_once():
    results = dict(run_tasks(square, [(n,) for n in range(7)], runner_config()))
    assert results == {(n,): n * n for n in range(7)}


@pytest.mark.parametrize("how, expected_reports", [
    ("raise", ["ValueError: planned failure for"]),  # the worker's error, without its traceback
    # When both workers die at once, pebble may only notice one task's loss at its timeout.
    ("die", ["exit code 13", "worker_timeout"]),
    ("hang", ["worker_timeout"]),
])
def test_failed_tasks_are_reported_and_retried(tmp_path, how, expected_reports):
    reports = []
    started = time.monotonic()
    tasks = [(str(tmp_path), value, how) for value in range(3)]
    results = dict(run_tasks(fail_first_time, tasks, runner_config(timeout=3.0), report=reports.append))
    assert results == {task: task[1] * 10 for task in tasks}
    assert len(reports) == 3
    assert all(any(expected in report for expected in expected_reports) for report in reports)
    assert all("\n" not in report and "Traceback" not in report for report in reports)  # one line each
    assert time.monotonic() - started < 120, "a hung worker must not hang the run"


def test_a_task_failing_every_time_stops_the_run_with_its_traceback():
    reports = []
    with pytest.raises(TaskFailedError) as error:
        list(run_tasks(always_fail, [(5,)], runner_config(retries=1), name=lambda args: f"task {args[0]}",
                       report=reports.append))
    assert "task 5 failed 2 times" in str(error.value) and "RuntimeError: broken task 5" in str(error.value)
    assert len(reports) == 1


def test_a_pool_broken_by_workers_dying_at_start_up_is_started_again(tmp_path, monkeypatch):
    monkeypatch.setenv("CRASH_ON_IMPORT_MARKER", str(tmp_path / "crashed"))
    reports = []
    results = dict(run_tasks(double, [(n,) for n in range(4)], runner_config(), report=reports.append))
    assert results == {(n,): 2 * n for n in range(4)}
    assert (tmp_path / "crashed").exists() and reports, "the first workers must have died"
    assert all("\n" not in report and "retrying" in report for report in reports), reports


def test_a_user_facing_error_stops_the_run_without_retries():
    reports = []
    with pytest.raises(UserFacingError, match="bad setting for 1"):
        list(run_tasks(raise_user_error, [(1,)], runner_config(retries=3), report=reports.append))
    assert reports == []


def test_a_tasks_own_timeout_error_is_reported_with_its_traceback():
    with pytest.raises(TaskFailedError, match="the task's own timeout 7"):
        list(run_tasks(raise_own_timeout, [(7,)], runner_config(retries=0)))


def test_workers_do_not_repeat_tensorflows_start_up_lines_but_show_their_own_messages(tmp_path):
    tests, world_models = Path(__file__).resolve().parent, Path(__file__).resolve().parents[1] / "WorldModels"
    parent_only = f"import sys; sys.path[:0] = [{str(world_models)!r}]; import common.tensorflow_settings; " \
                  "import tensorflow as tf; tf.constant(1)"
    script = tmp_path / "script.py"
    script.write_text(f"""import argparse, sys
sys.path[:0] = [{str(world_models)!r}, {str(tests)!r}]
import common.tensorflow_settings
import tensorflow as tf
from common.parallel import run_tasks
from parallel_tasks import double_with_tensorflow
if __name__ == "__main__":
    tf.constant(1)
    config = argparse.Namespace(backend="local", num_workers=1, worker_timeout=60.0, worker_max_retries=0)
    print(sorted(result for _, result in run_tasks(double_with_tensorflow, [(1,), (2,)], config)))
""")
    alone = subprocess.run([sys.executable, "-c", parent_only], capture_output=True, text=True, check=True)
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[2, 4]"
    assert "task 1 says hello" in run.stderr and "task 2 says hello" in run.stderr
    assert run.stderr.count("oneDNN") == alone.stderr.count("oneDNN")  # the parent's lines, not the workers'
    assert run.stderr.count("E0000") == alone.stderr.count("E0000")


def test_a_worker_failing_during_its_quiet_start_up_still_shows_its_traceback(tmp_path):
    tests, world_models = Path(__file__).resolve().parent, Path(__file__).resolve().parents[1] / "WorldModels"
    script = tmp_path / "script.py"
    script.write_text(f"""import argparse, multiprocessing, sys
sys.path[:0] = [{str(world_models)!r}, {str(tests)!r}]
import common.tensorflow_settings
from common.parallel import TaskFailedError, run_tasks
from parallel_tasks import square
if multiprocessing.current_process().name != "MainProcess":  # the worker's import of this script fails
    raise RuntimeError("a failure only the worker meets")
if __name__ == "__main__":
    config = argparse.Namespace(backend="local", num_workers=1, worker_timeout=60.0, worker_max_retries=0)
    try:
        list(run_tasks(square, [(3,)], config))
    except TaskFailedError:
        print("the task failed")
""")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "the task failed"
    assert "RuntimeError: a failure only the worker meets" in run.stderr  # replayed from the captured start-up
