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
import time
import traceback
from pathlib import Path

from errors import UserFacingError


class TaskFailedError(UserFacingError):
    """A task failed on every attempt; the message holds its last traceback."""


def run_tasks(function, tasks, config, name=repr, report=print):
    """Yield (args, function(*args)) for each args in tasks as they finish; see the module docstring.

    name(args) labels a task in messages; report(text) prints them (tqdm.write under a progress bar).
    """
    tasks = list(tasks)
    if not tasks:
        return
    retry = _RetryPolicy(config.worker_max_retries, name, report)
    if config.backend == "ray":
        yield from _run_ray(function, tasks, config, retry)
    else:
        yield from _run_local(function, tasks, config, retry)


class _RetryPolicy:
    """Reports a failed attempt and decides whether the task runs again."""

    def __init__(self, max_retries, name, report):
        self.max_retries, self.name, self.report = max_retries, name, report

    def failed(self, args, attempt, error):
        """Report the failure of attempt `attempt` (0-based); raise TaskFailedError after the last."""
        detail = _describe(error)
        label = self.name(args)
        if attempt >= self.max_retries:
            raise TaskFailedError(f"{label} failed {attempt + 1} times; last error:\n{detail}")
        self.report(f"{label} failed (attempt {attempt + 1} of {self.max_retries + 1}); retrying. {detail}")


def _describe(error):
    exit_code = getattr(error, "exitcode", None)
    if exit_code is not None:  # the worker process died: there is no Python traceback to show
        return f"The worker process died with exit code {exit_code}."
    if isinstance(error, TimeoutError):
        return "It ran past worker_timeout; its worker was killed."
    remote_traceback = getattr(error, "traceback", None)  # pebble attaches the worker's traceback
    if isinstance(remote_traceback, str):
        return remote_traceback.rstrip()
    return "".join(traceback.format_exception(error)).rstrip()


def _run_local(function, tasks, config, retry):
    import pebble

    num_workers = config.num_workers or os.cpu_count() or 1
    # spawn, not fork: a forked TensorFlow or pygame process can deadlock.
    pool = pebble.ProcessPool(max_workers=num_workers, context=multiprocessing.get_context("spawn"))
    try:
        pending = {pool.schedule(function, args=args, timeout=config.worker_timeout): (args, 0) for args in tasks}
        while pending:
            finished, _ = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in finished:
                args, attempt = pending.pop(future)
                try:
                    result = future.result()
                except Exception as error:
                    retry.failed(args, attempt, error)
                    pending[pool.schedule(function, args=args, timeout=config.worker_timeout)] = (args, attempt + 1)
                else:
                    yield args, result
    finally:
        pool.stop()
        pool.join()


# Ray workers import WorldModels/ from a copy of this folder that Ray ships to every node.
RAY_RUNTIME_ENV = {
    "working_dir": str(Path(__file__).resolve().parent),
    "excludes": ["results/", "__pycache__/", "*.npz", "*.keras", "*.gif"],
}


def _run_ray(function, tasks, config, retry):
    try:
        import ray
    except ImportError:
        raise UserFacingError("backend=ray needs Ray: pip install -r requirements-cluster.txt") from None

    # Connect once per process and stay connected (Ray disconnects at exit): a second ray.init in
    # one process does not upload working_dir again and its tasks fail (ray-project/ray#23423).
    if not ray.is_initialized():
        local = not config.ray_address
        ray.init(address=config.ray_address or None, num_cpus=(config.num_workers or None) if local else None,
                 runtime_env=RAY_RUNTIME_ENV, include_dashboard=False, logging_level="WARNING")
    num_workers = config.num_workers or int(ray.cluster_resources().get("CPU", 1))
    remote_function = ray.remote(max_retries=0)(function)  # retried here, the same way as locally
    queue = collections.deque((args, 0) for args in tasks)
    running = {}  # ObjectRef -> (args, attempt, start time)
    try:
        while queue or running:
            # At most num_workers tasks in flight, so a task's clock starts when it starts.
            while queue and len(running) < num_workers:
                args, attempt = queue.popleft()
                running[remote_function.remote(*args)] = (args, attempt, time.monotonic())
            ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            for ref in ready:
                args, attempt, _ = running.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as error:
                    retry.failed(args, attempt, error)
                    queue.append((args, attempt + 1))
                else:
                    yield args, result
            for ref, (args, attempt, started) in list(running.items()):
                if time.monotonic() - started > config.worker_timeout:
                    ray.cancel(ref, force=True)
                    del running[ref]
                    retry.failed(args, attempt, TimeoutError())
                    queue.append((args, attempt + 1))
    finally:
        for ref in running:
            ray.cancel(ref, force=True)
