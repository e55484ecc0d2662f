"""Process settings that TensorFlow reads once, when it is first imported: import this module first.

oneDNN. TensorFlow's x86 wheels use their oneDNN kernels by default only on CPUs with AVX-512
(VNNI, BF16 or AMX); on every other CPU (AVX2 laptops and most cloud VMs) they fall back to Eigen
kernels compiled for plain AVX, without FMA. Measured on an AMD EPYC with AVX2 (TensorFlow 2.21,
batch of 100): the ConvVAE's training step took 2.0 s with that fallback and 0.35 s with oneDNN,
and a float32 matrix product ran at ~100 against ~140 GFLOP/s. So oneDNN is turned on for every
CPU, unless the user has set TF_ENABLE_ONEDNN_OPTS themselves (0 turns it off). It changes the
order of floating-point sums, not the mathematics. GPUs are unaffected.
"""

import multiprocessing
import os
import sys

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
os.environ.setdefault(ONEDNN_VARIABLE, "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow's INFO lines are noise for a researcher

# Worker processes (common/parallel.py) would each repeat TensorFlow's start-up lines, which its C++
# code writes before any log level applies. A worker's stderr goes to /dev/null while it imports the
# modules of its parent's script (here: this module is imported first); quiet_start_ended() runs as
# its first act and gives stderr back, so every later message (a task's traceback) is shown.
QUIET_WORKERS_VARIABLE = "WORLDMODELS_QUIET_WORKERS"
_saved_stderr = None
if os.environ.get(QUIET_WORKERS_VARIABLE) and multiprocessing.current_process().name != "MainProcess":
    _saved_stderr = os.dup(2)
    _null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(_null, 2)
    os.close(_null)


def quiet_start_ended():
    """A worker's initializer: let TensorFlow (if imported) find its devices, still quietly, then restore stderr."""
    global _saved_stderr
    if _saved_stderr is None:
        return
    if "tensorflow" in sys.modules:
        sys.modules["tensorflow"].config.list_physical_devices()  # CUDA's start-up line, on a machine without one
    sys.stderr.flush()
    os.dup2(_saved_stderr, 2)
    os.close(_saved_stderr)
    _saved_stderr = None


def onednn_enabled():
    """Whether TensorFlow in this process uses its oneDNN kernels (None if this TensorFlow cannot say)."""
    try:
        from tensorflow.python.util import _pywrap_util_port  # TensorFlow's own check; not a public API
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())
