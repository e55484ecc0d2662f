"""Tasks for test_parallel.py; a module of their own so that spawned worker processes can import them."""

import os
import time
from pathlib import Path


def square(value):
    return value * value


def fail_first_time(marker_dir, value, how):
    """Fail on the first call for `value` (by raising, dying or hanging), succeed on the next."""
    marker = Path(marker_dir) / f"{value}.tried"
    if not marker.exists():
        marker.touch()
        if how == "raise":
            raise ValueError(f"planned failure for {value}")
        if how == "die":
            os._exit(13)
        if how == "hang":
            time.sleep(600)
    return value * 10


def always_fail(value):
    raise RuntimeError(f"broken task {value}")


def raise_user_error(value):
    from common.errors import UserFacingError
    raise UserFacingError(f"bad setting for {value}")


def raise_own_timeout(value):
    raise TimeoutError(f"the task's own timeout {value}")


def constant_action_policy(rng):
    """An exploration policy for extract tests: full gas, straight ahead."""
    import numpy as np

    def act(frame):
        return np.array([0.0, 1.0, 0.0], dtype=np.float32)
    return act


def double_with_tensorflow(value):
    """Use TensorFlow in a worker, and say so on stderr (which must reach the user)."""
    import sys

    import tensorflow as tf

    print(f"task {value} says hello", file=sys.stderr, flush=True)
    return int(tf.constant(value) * 2)
