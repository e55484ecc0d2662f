"""Process settings that TensorFlow reads once, when it is first imported: import this module first.

oneDNN. TensorFlow's x86 wheels use their oneDNN kernels by default only on CPUs with AVX-512
(VNNI, BF16 or AMX); on every other CPU (AVX2 laptops and most cloud VMs) they fall back to Eigen
kernels compiled for plain AVX, without FMA. Measured on an AMD EPYC with AVX2 (TensorFlow 2.21,
batch of 100): the ConvVAE's training step took 2.0 s with that fallback and 0.35 s with oneDNN,
and a float32 matrix product ran at ~100 against ~140 GFLOP/s. So oneDNN is turned on for every
CPU, unless the user has set TF_ENABLE_ONEDNN_OPTS themselves (0 turns it off). It changes the
order of floating-point sums, not the mathematics. GPUs are unaffected.

A quiet start (common/quiet_start.py): the first import of this module in a script's process starts
TensorFlow with its C++ start-up notices (`E0000 ... failed call to cuInit` on every machine without a
GPU) kept off the screen; a real problem during start-up still shows.
"""

import os
import sys

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
os.environ.setdefault(ONEDNN_VARIABLE, "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow's INFO lines are noise for a researcher

from common.quiet_start import capturing, start_tensorflow_quietly  # noqa: E402

# A worker captures its whole start-up (common/quiet_start.py) and starts TensorFlow in its initializer
# if its parent uses it; anywhere else (a script's process, or a worker whose task is the first to need
# TensorFlow), the first import of this module starts TensorFlow, quietly.
if "tensorflow" not in sys.modules and not capturing():
    start_tensorflow_quietly()


def onednn_enabled():
    """Whether TensorFlow in this process uses its oneDNN kernels (None if this TensorFlow cannot say)."""
    try:
        from tensorflow.python.util import _pywrap_util_port  # TensorFlow's own check; not a public API
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())
