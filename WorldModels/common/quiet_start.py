"""Starting TensorFlow without the C++ start-up notices that a researcher reads as errors.

TensorFlow's C++ start-up writes lines such as `E0000 ... failed call to cuInit` (on every machine
without a GPU) before any Python log level applies. Two cases:
- the script's own process: start_tensorflow_quietly() imports TensorFlow and lets it find its devices
  with stderr captured, then writes back every captured line except START_UP_NOTICES;
- worker processes (common/parallel.py sets QUIET_WORKERS_VARIABLE): importing this module, which the
  parent's modules do while a worker imports them, captures the worker's stderr until
  quiet_start_ended(), the workers' initializer.
Importing this module does not import TensorFlow (common/parallel.py serves scripts without it).
"""

import atexit
import multiprocessing
import os
import re
import sys
import tempfile

QUIET_WORKERS_VARIABLE = "WORLDMODELS_QUIET_WORKERS"

# What TensorFlow's start-up writes on a machine without a GPU, and says nothing about the run
START_UP_NOTICES = re.compile("|".join([
    r"All log messages before absl::InitializeLog\(\) is called",
    r"failed call to cuInit",
    r"Could not find cuda drivers",
    r"oneDNN custom operations are on",
    r"Unable to register cu(DNN|FFT|BLAS) factory",
    r"computation placer already registered",
    r"This TensorFlow binary is optimized to use available CPU instructions",
    r"To enable the following instructions: .* in other operations, rebuild TensorFlow",
    r"TF-TRT Warning: Could not find TensorRT",
]))
_saved_stderr = _captured = None


def start_up_lines_to_show(text):
    """The lines of captured start-up output that are not START_UP_NOTICES, as one string."""
    return "".join(line for line in text.splitlines(keepends=True) if not START_UP_NOTICES.search(line))


def _begin_quiet_start():
    """Send stderr (the file descriptor, so C++ output too) to a temporary file. A process that exits
    before _end_quiet_start (a worker whose imports fail, say) writes the file out whole at exit."""
    global _saved_stderr, _captured
    sys.stderr.flush()
    _captured = tempfile.TemporaryFile()
    _saved_stderr = os.dup(2)
    os.dup2(_captured.fileno(), 2)
    atexit.register(_end_quiet_start, show=lambda text: text)


def _end_quiet_start(show=start_up_lines_to_show):
    """Give stderr back, after writing out show(what was captured): by default, all but the notices."""
    global _saved_stderr, _captured
    if _saved_stderr is None:
        return
    sys.stderr.flush()
    os.dup2(_saved_stderr, 2)
    os.close(_saved_stderr)
    _captured.seek(0)
    shown = show(_captured.read().decode(errors="replace"))
    _captured.close()
    _saved_stderr = _captured = None
    if shown:
        sys.stderr.write(shown)
        sys.stderr.flush()


def capturing():
    """Whether this process's start-up output is being captured now (a worker before its initializer ran)."""
    return _saved_stderr is not None


def start_tensorflow_quietly():
    """In a script's own process: import TensorFlow and let it find its devices (where CUDA writes its
    notice) with stderr captured, then write back all but the notices."""
    _begin_quiet_start()
    try:
        import tensorflow as tf

        tf.config.list_physical_devices()
    finally:
        _end_quiet_start()


def quiet_start_ended(import_tensorflow=False):
    """A worker's initializer: start TensorFlow (if the worker's parent uses it, or it is imported already)
    and let it find its devices, still quietly; then restore stderr, writing back all but the notices."""
    if _saved_stderr is not None and (import_tensorflow or "tensorflow" in sys.modules):
        import tensorflow as tf

        tf.config.list_physical_devices()
    _end_quiet_start()


# Workers (common/parallel.py sets the variable) capture from here, the first of their imports of the
# parent's modules that can start TensorFlow, to their initializer.
if os.environ.get(QUIET_WORKERS_VARIABLE) and multiprocessing.current_process().name != "MainProcess":
    _begin_quiet_start()


