"""The exceptions a user sees as a message: the CLI prints them without a traceback and exits with their code.

Exit codes: 0 success; 1 a bug (a traceback); 2 a user error (spec, data, paths); 3 stopped by SIGTERM or
SIGINT with a resumable checkpoint saved; 4 the training loss became non-finite; 5 under torchrun, another
process failed or stopped (a collective failed or timed out); 130 a second Ctrl-C.
"""


class HomofitError(Exception):
    """A user error: the CLI prints the message without a traceback and exits with code 2."""

    exit_code = 2
    label = "error"


class TrainingInterrupted(HomofitError):
    """Training stopped on a signal after saving a resumable `last`: resume with `--resume`."""

    exit_code = 3
    label = "stopped"


class DistributedFailure(HomofitError):
    """Under torchrun, another process died or stopped: a collective failed or timed out (exit code 5)."""

    exit_code = 5
    label = "error"


class NonFiniteLoss(HomofitError):
    """The loss became NaN or infinite; nothing after the last good checkpoint is kept."""

    exit_code = 4
    label = "error"
