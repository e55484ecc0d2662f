"""Progress output that reads well both on a terminal and in a log file (nohup, CI, a cluster job).

On a terminal, Keras and tqdm redraw their progress bars in place. In a file those redraws are
escape codes and carriage returns (a pipeline log held 31 redraws per epoch), so there Keras prints
one line per epoch and a tqdm bar writes a plain line at most once a minute.
"""

import sys

from tqdm import tqdm

FILE_REDRAW_SECONDS = 60


def keras_verbosity():
    """fit()'s verbose: 1 (the redrawn bar) on a terminal, 2 (one line per epoch) otherwise."""
    return 1 if sys.stdout.isatty() else 2


class _Lines:
    """A stream for tqdm outside a terminal: every redraw becomes a line of its own."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        text = text.replace("\r", "").replace("\x1b[A", "").strip("\n")
        if text.strip():
            self.stream.write(text + "\n")

    def flush(self):
        self.stream.flush()


def progress_bar(*args, **kwargs):
    """tqdm(*args, **kwargs), redrawn on a terminal; in a file, a line at most every minute (so callers
    update its postfix with refresh=False, which waits for the next redraw)."""
    if not sys.stderr.isatty():
        kwargs = {"mininterval": FILE_REDRAW_SECONDS, "maxinterval": FILE_REDRAW_SECONDS, "file": _Lines(sys.stderr),
                  "ncols": 120, **kwargs}
    return tqdm(*args, dynamic_ncols=sys.stderr.isatty(), **kwargs)
