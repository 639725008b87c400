"""Run the homofit command line in this process and SIGKILL it at a chosen point, for the resume tests.

    python tests/train_driver.py train SPEC --run-dir RUN     (the homofit arguments)

HOMOFIT_TEST_KILL_AFTER_BATCHES=N kills the process after the forward pass of its N-th training
micro-batch; HOMOFIT_TEST_KILL_IN_SAVE=N kills it in the middle of its N-th checkpoint save, after the
weights are written and before the tokenizer and trainer state are.
"""

from __future__ import annotations

import os
import signal
import sys

import homofit.checkpoint
import homofit.losses
from homofit.cli import main


def kill_on_call(module: object, name: str, count: int, after: bool, training_only: bool = False) -> None:
    """Kill at the count-th call (with training_only, of those made with gradients on: not in evaluation)."""
    import torch

    original = getattr(module, name)
    calls = 0

    def wrapper(*args: object, **kwargs: object) -> object:
        nonlocal calls
        if training_only and not torch.is_grad_enabled():
            return original(*args, **kwargs)
        calls += 1
        if calls == count and not after:
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(*args, **kwargs)
        if calls == count and after:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(module, name, wrapper)


if __name__ == "__main__":
    # HOMOFIT_TEST_KILL_RANK=R: under torchrun, only the process of that rank is killed
    chosen = os.environ.get("HOMOFIT_TEST_KILL_RANK")
    if chosen is not None and os.environ.get("RANK", "0") != chosen:
        os.environ.pop("HOMOFIT_TEST_KILL_AFTER_BATCHES", None)
        os.environ.pop("HOMOFIT_TEST_KILL_IN_SAVE", None)
    if os.environ.get("HOMOFIT_TEST_KILL_AFTER_BATCHES"):
        kill_on_call(homofit.losses, "summed_cross_entropy", int(os.environ["HOMOFIT_TEST_KILL_AFTER_BATCHES"]),
                     after=True, training_only=True)
    if os.environ.get("HOMOFIT_TEST_KILL_IN_SAVE"):
        kill_on_call(homofit.checkpoint, "write_weights", int(os.environ["HOMOFIT_TEST_KILL_IN_SAVE"]), after=True)
    sys.argv = ["homofit", *sys.argv[1:]]
    main()
