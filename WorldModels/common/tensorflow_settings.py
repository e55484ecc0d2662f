"""Process settings that TensorFlow reads once, when it is first imported: import this module first.

oneDNN. TensorFlow's x86 wheels use their oneDNN kernels by default only on CPUs with AVX-512
(VNNI, BF16 or AMX); on every other CPU (AVX2 laptops and most cloud VMs) they fall back to Eigen
kernels compiled for plain AVX, without FMA. Measured on an AMD EPYC with AVX2 (TensorFlow 2.21,
batch of 100): the ConvVAE's training step took 2.0 s with that fallback and 0.35 s with oneDNN,
and a float32 matrix product ran at ~100 against ~140 GFLOP/s. So oneDNN is turned on for every
CPU, unless the user has set TF_ENABLE_ONEDNN_OPTS themselves (0 turns it off). It changes the
order of floating-point sums, not the mathematics. GPUs are unaffected.
"""

import atexit
import multiprocessing
import os
import sys
import tempfile

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
os.environ.setdefault(ONEDNN_VARIABLE, "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow's INFO lines are noise for a researcher

# Worker processes (common/parallel.py) would each repeat TensorFlow's start-up lines, which its C++
# code writes before any log level applies. While a worker imports the modules of its parent's script
# (this module is imported first), its stderr goes to a temporary file; quiet_start_ended(), its
# initializer, drops what was written there and gives stderr back. A worker that dies before that
# (say, an import error) replays the file at exit, so no message is lost.
QUIET_WORKERS_VARIABLE = "WORLDMODELS_QUIET_WORKERS"
_saved_stderr = _captured = None


def _begin_quiet_start():
    global _saved_stderr, _captured
    _captured = tempfile.TemporaryFile()
    _saved_stderr = os.dup(2)
    os.dup2(_captured.fileno(), 2)
    atexit.register(_end_quiet_start, replay=True)


def _end_quiet_start(replay):
    """Give stderr back; with replay, first write out what the start-up wrote while it was captured."""
    global _saved_stderr, _captured
    if _saved_stderr is None:
        return
    sys.stderr.flush()
    os.dup2(_saved_stderr, 2)
    os.close(_saved_stderr)
    if replay:
        _captured.seek(0)
        os.write(2, _captured.read())
    _captured.close()
    _saved_stderr = _captured = None


def quiet_start_ended(import_tensorflow=False):
    """A worker's initializer: start TensorFlow (if the worker's parent uses it, or it is imported already)
    and let it find its devices, still quietly; then restore stderr."""
    if _saved_stderr is not None and (import_tensorflow or "tensorflow" in sys.modules):
        import tensorflow as tf

        tf.config.list_physical_devices()  # CUDA's start-up line, on a machine without one
    _end_quiet_start(replay=False)


if os.environ.get(QUIET_WORKERS_VARIABLE) and multiprocessing.current_process().name != "MainProcess":
    _begin_quiet_start()


def onednn_enabled():
    """Whether TensorFlow in this process uses its oneDNN kernels (None if this TensorFlow cannot say)."""
    try:
        from tensorflow.python.util import _pywrap_util_port  # TensorFlow's own check; not a public API
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())
