"""Device, precision and processes, decided once per run so the loop never asks again."""

from __future__ import annotations

import contextlib
import os
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from homofit.errors import HomofitError

if TYPE_CHECKING:
    import torch


@dataclass
class Runtime:
    device: torch.device
    dtype: torch.dtype | None  # the autocast dtype, None for full fp32
    rank: int = 0
    world_size: int = 1
    strategy: str = "ddp"

    @property
    def sharded_model(self) -> bool:
        """FSDP: every process must run every forward pass together, and saving gathers the weights."""
        return self.world_size > 1 and self.strategy == "fsdp"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def precision(self) -> str:
        return {None: "fp32"}.get(
            self.dtype, str(self.dtype).removeprefix("torch.").replace("bfloat", "bf").replace("float", "fp"))

    def autocast(self) -> contextlib.AbstractContextManager:
        import torch

        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def describe(self) -> str:
        name = str(self.device)
        if self.device.type == "cuda":
            import torch

            name += f" ({torch.cuda.get_device_name(self.device)})"
        processes = f", {self.world_size} processes" if self.world_size > 1 else ""
        return f"{name}, {self.precision}{processes}"


def build_runtime(device_choice: str, precision: str, dist_timeout_s: int = 1800) -> Runtime:
    """Pick the device and the autocast dtype; join the process group when started by torchrun, with a
    timeout so that a process that dies or stops cannot leave the others waiting for ever."""
    import datetime

    import torch

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if device_choice == "cuda" and not torch.cuda.is_available():
        raise HomofitError("train.device: cuda was asked for but no GPU is visible; use device: auto or cpu.")
    use_cuda = device_choice != "cpu" and torch.cuda.is_available()
    if use_cuda:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world_size > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if use_cuda else "gloo",
                                             timeout=datetime.timedelta(seconds=dist_timeout_s))
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    if precision == "auto":
        dtype = torch.bfloat16 if use_cuda and torch.cuda.is_bf16_supported() else None
    if dtype == torch.float16 and not use_cuda:
        raise HomofitError("train.precision: fp16 needs a GPU; use bf16 or fp32 on the CPU.")
    if not use_cuda:
        keep_freed_memory()
    return Runtime(device, dtype, rank, world_size)


# glibc's mallopt parameters, and the values the CPU path sets: a block of up to 512 MiB comes from the heap,
# not from its own mmap, and up to 1 GiB freed at the heap's top stays with the process.
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_ALLOCATOR_SETTINGS = ((_M_MMAP_THRESHOLD, 512 << 20), (_M_TRIM_THRESHOLD, 1 << 30), (_M_TOP_PAD, 64 << 20))
_USER_ALLOCATOR_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES")


def keep_freed_memory() -> bool:
    """Let the process reuse the memory of the tensors it frees instead of handing it back to the system.

    A CPU training step allocates and frees the same large buffers every time (activations, the gradients,
    e.g. MiniLM's 47 MB word-embedding gradient). glibc serves blocks over its mmap threshold (at most 32 MB
    by default) with their own mmap and returns them on free, and trims the heap's top, so the next step
    faults and zeroes every page again: 4-10% of a MiniLM step on two cores. Keeping freed memory avoids that;
    peak RSS stays about the same, since the peak is what one step holds at once.

    Only on Linux with glibc; a no-op when `HOMOFIT_MALLOC_TUNING=0` or when the environment already sets
    glibc's malloc (MALLOC_*_ variables, GLIBC_TUNABLES): the user's choice wins. Returns whether it applied.
    """
    import ctypes
    import sys

    if (not sys.platform.startswith("linux") or os.environ.get("HOMOFIT_MALLOC_TUNING", "1") == "0"
            or any(name in os.environ for name in _USER_ALLOCATOR_VARIABLES)):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # glibc's own symbol: musl's mallopt does nothing  # noqa: B018
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    applied = [mallopt(parameter, value) == 1 for parameter, value in _ALLOCATOR_SETTINGS]  # every one, in order
    return all(applied)


def seed_everything(seed: int) -> None:
    import numpy
    import torch

    random.seed(seed)
    numpy.random.seed(seed)
    torch.manual_seed(seed)
