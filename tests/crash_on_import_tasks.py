"""A task module whose import kills the worker process the first time (a worker dying at start-up).

The marker file named by $CRASH_ON_IMPORT_MARKER records that the crash has happened.
"""

import multiprocessing
import os
from pathlib import Path

marker = Path(os.environ.get("CRASH_ON_IMPORT_MARKER", "/nonexistent/marker"))
if multiprocessing.parent_process() is not None and marker.parent.exists() and not marker.exists():
    marker.touch()
    os._exit(3)


def double(value):
    return 2 * value
