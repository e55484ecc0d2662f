"""The project's expected failures, and how scripts report them."""

import contextlib
import signal
import sys


class UserFacingError(Exception):
    """An expected failure whose message says all a user needs (which file, which key, what to do).

    Scripts print it as one message, without a Python traceback (see `exit_on_user_error`).
    """


@contextlib.contextmanager
def exit_on_user_error():
    """Around a script's main(): print a UserFacingError as `error: ...` and exit with status 1;
    on Ctrl-C, say that the run can be resumed and exit with status 130. A SIGTERM (kill, a cluster's
    scheduler) is handled as Ctrl-C, so the run's worker processes are stopped with it, not left running."""
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    except UserFacingError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        print("\ninterrupted: everything written so far is complete; rerun the same command to resume",
              file=sys.stderr)
        raise SystemExit(130) from None


def _interrupt(signum, frame):
    raise KeyboardInterrupt
