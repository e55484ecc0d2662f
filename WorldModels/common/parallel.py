"""Run many independent tasks on worker processes: locally (pebble) or as Ray tasks on a cluster.

`run_tasks(function, tasks, config)` calls `function(*args)` for every args tuple in `tasks` and
yields `(args, result)` in the order tasks finish. A task that raises, kills its worker, or runs
longer than `worker_timeout` seconds is reported with its traceback and retried, at most
`worker_max_retries` times; after that `TaskFailedError` stops the run. Dead or hung workers are
replaced, so a run never hangs. `function` must be a module-level function of WorldModels/.

Config keys: backend (local | ray), num_workers (0: every core, or every CPU of the Ray cluster),
worker_timeout, worker_max_retries, ray_address.
"""

import collections
import concurrent.futures
import multiprocessing
import os
import sys
import time
import traceback
from pathlib import Path

from common.errors import UserFacingError
from common.quiet_start import QUIET_WORKERS_VARIABLE, quiet_start_ended


def worker_count(config):
    """Worker processes on this machine: config.num_workers, where 0 means one per core."""
    return config.num_workers or os.cpu_count() or 1


class TaskFailedError(UserFacingError):
    """A task failed on every attempt; the message holds its last traceback."""


class WorkerTimeout(Exception):
    """A Ray task ran longer than worker_timeout (it was cancelled)."""


def open_workers(function, config):
    """Workers for `function` (local processes or Ray tasks, by config.backend), to pass to several
    run_tasks calls so that worker processes, and what they loaded, live on between them. close() them."""
    return RayTasks(function, config) if config.backend == "ray" else LocalProcesses(function, config)


def run_tasks(function, tasks, config, name=repr, report=print, workers=None):
    """Yield (args, function(*args)) for each args in tasks as they finish; see the module docstring.

    name(args) labels a task in messages; report(text) prints them (tqdm.write under a progress bar).
    A UserFacingError raised by a task (a deterministic problem such as a bad setting) is not
    retried: it stops the run at once with its own message. `workers` from open_workers(function,
    config) are used and left open; without them, workers are started for these tasks and closed.
    """
    tasks = list(tasks)
    if not tasks:
        return
    own_workers = workers is None
    workers = open_workers(function, config) if own_workers else workers
    try:
        for args in tasks:
            workers.submit(args, attempt=0)
        for args, attempt, outcome in workers.finished():
            if not isinstance(outcome, BaseException):
                yield args, outcome
                continue
            cause = getattr(outcome, "cause", outcome)  # Ray wraps the task's exception
            if isinstance(cause, UserFacingError):
                raise cause
            if attempt >= config.worker_max_retries:
                raise TaskFailedError(f"{name(args)} failed {attempt + 1} times; last error:\n{_describe(outcome)}")
            report(f"{name(args)} failed (attempt {attempt + 1} of {config.worker_max_retries + 1}: "
                   f"{_one_line(outcome)}); retrying")
            workers.submit(args, attempt + 1)
    finally:
        if own_workers:
            workers.close()
        else:
            workers.cancel()


def _one_line(error):
    """What went wrong in a task, in one line (a retry's report; the full story comes if it fails for good)."""
    described = _describe(error)
    if "\n" not in described:
        return described.rstrip(".")
    last = [line for line in described.splitlines() if line.strip()][-1].strip()  # "SomeError: message"
    return last if ":" in last else f"{type(error).__name__}: {error}"


def _describe(error):
    """What went wrong in a task, for a report: the worker's traceback, exit code, or timeout."""
    exit_code = getattr(error, "exitcode", None)
    if exit_code is not None:  # the worker process died: there is no Python traceback to show
        return f"The worker process died with exit code {exit_code}."
    remote_traceback = getattr(error, "traceback", None)  # pebble attaches the worker's traceback
    if isinstance(remote_traceback, str):
        return remote_traceback.rstrip()
    # pebble's timeout (concurrent.futures.TimeoutError; not the builtin one on Python 3.10)
    if isinstance(error, (WorkerTimeout, concurrent.futures.TimeoutError)):
        return "It ran past worker_timeout; its worker was killed."
    return "".join(traceback.format_exception(error)).rstrip()


class LocalProcesses:
    """Worker processes on this machine (pebble): a task past its timeout has its worker killed,
    a dead worker is replaced, and a pool broken by workers dying at start-up is started afresh."""

    def __init__(self, function, config):
        import pebble

        self.function, self.timeout = function, config.worker_timeout
        os.environ[QUIET_WORKERS_VARIABLE] = "1"  # workers do not repeat TensorFlow's start-up lines
        # workers of a process that uses TensorFlow start it in their quiet start-up
        uses_tensorflow = "tensorflow" in sys.modules
        # spawn, not fork: a forked TensorFlow or pygame process can deadlock.
        self.new_pool = lambda: pebble.ProcessPool(max_workers=worker_count(config),
                                                   context=multiprocessing.get_context("spawn"),
                                                   initializer=quiet_start_ended, initargs=(uses_tensorflow,))
        self.pool = self.new_pool()
        self.pending = {}  # future -> (args, attempt)

    def submit(self, args, attempt):
        if not self.pool.active:
            self.pool.stop()
            self.pool = self.new_pool()
        self.pending[self.pool.schedule(self.function, args=args, timeout=self.timeout)] = (args, attempt)

    def finished(self):
        """Yield (args, attempt, result or exception) as tasks finish, until none is pending."""
        while self.pending:
            done, _ = concurrent.futures.wait(self.pending, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                args, attempt = self.pending.pop(future)
                error = future.exception()
                yield args, attempt, error if error is not None else future.result()

    def cancel(self):
        """Drop the pending tasks (after a failure), keeping the workers."""
        for future in self.pending:
            future.cancel()
        self.pending.clear()

    def close(self):
        self.pool.stop()
        self.pool.join()


# Ray workers import WorldModels/ from a copy of this folder that Ray ships to every node.
RAY_RUNTIME_ENV = {
    "working_dir": str(Path(__file__).resolve().parents[1]),  # WorldModels/
    "excludes": ["results/", "__pycache__/", "*.npz", "*.keras", "*.gif"],
}


class RayTasks:
    """Ray tasks on a cluster (ray_address) or on a new local Ray instance. At most as many tasks
    are in flight as there are workers, so a task's clock starts when the task starts."""

    def __init__(self, function, config):
        try:
            import ray
        except ImportError:
            raise UserFacingError("backend=ray needs Ray: pip install -r requirements-cluster.txt") from None
        self.ray, self.timeout = ray, config.worker_timeout
        # Connect once per process and stay connected (Ray disconnects at exit): a second ray.init in
        # one process does not upload working_dir again and its tasks fail (ray-project/ray#23423).
        if not ray.is_initialized():
            local = not config.ray_address
            ray.init(address="local" if local else config.ray_address,
                     num_cpus=(config.num_workers or None) if local else None,
                     runtime_env=RAY_RUNTIME_ENV, include_dashboard=False, logging_level="WARNING")
        cluster_cpus = int(ray.cluster_resources().get("CPU", 1))
        self.num_workers = min(config.num_workers or cluster_cpus, cluster_cpus)
        self.remote_function = ray.remote(max_retries=0)(function)  # retried by run_tasks, as locally
        self.queue = collections.deque()
        self.running = {}  # ObjectRef -> (args, attempt, start time)

    def submit(self, args, attempt):
        self.queue.append((args, attempt))

    def finished(self):
        """Yield (args, attempt, result or exception) as tasks finish, until none is queued or running."""
        while self.queue or self.running:
            while self.queue and len(self.running) < self.num_workers:
                args, attempt = self.queue.popleft()
                self.running[self.remote_function.remote(*args)] = (args, attempt, time.monotonic())
            ready, _ = self.ray.wait(list(self.running), num_returns=1, timeout=1.0)
            for ref in ready:
                args, attempt, _ = self.running.pop(ref)
                try:
                    outcome = self.ray.get(ref)
                except Exception as error:
                    outcome = error
                yield args, attempt, outcome
            for ref, (args, attempt, started) in list(self.running.items()):
                if time.monotonic() - started > self.timeout:
                    self.ray.cancel(ref, force=True)
                    del self.running[ref]
                    yield args, attempt, WorkerTimeout()

    def cancel(self):
        """Drop the queued and running tasks (after a failure)."""
        for ref in self.running:
            self.ray.cancel(ref, force=True)
        self.running.clear()
        self.queue.clear()

    def close(self):
        self.cancel()
