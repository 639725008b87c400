"""`homofit train CONFIG --nproc N`: the same command under torch's elastic launcher (what torchrun runs),
N processes on this machine, and the exit code of the process that failed (2 for a user error), where
torchrun itself would report 1."""

from __future__ import annotations

import sys
import uuid

from homofit.errors import HomofitError


def without_nproc(argv: list[str]) -> list[str]:
    """The command line less --nproc N / --nproc=N."""
    kept, skip = [], False
    for argument in argv:
        if skip:
            skip = False
        elif argument == "--nproc":
            skip = True
        elif not argument.startswith("--nproc="):
            kept.append(argument)
    return kept


def relaunch(nproc: int, argv: list[str]) -> int:
    """Run `python -m homofit.cli ARGV` in `nproc` processes on this machine; returns the exit code."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if nproc < 1:
        raise HomofitError(f"--nproc {nproc}: give the number of processes, e.g. --nproc 2")
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.5)
    try:
        elastic_launch(config, entrypoint=sys.executable)("-m", "homofit.cli", *argv)
    except ChildFailedError as error:
        codes = sorted(failure.exitcode for failure in error.failures.values())
        if any(code > 0 for code in codes):  # a process stopped with a message of its own; the launcher ended the rest
            return next(code for code in codes if code > 0)
        for rank, failure in sorted(error.failures.items()):
            if failure.exitcode < 0:
                print(f"error: process {rank} of {nproc} was ended by signal {-failure.exitcode}; the others were "
                      "stopped. Resume with --resume RUN_DIR if the run saved a checkpoints/last.", file=sys.stderr)
        return 1
    return 0
