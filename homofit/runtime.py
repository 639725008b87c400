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
    return Runtime(device, dtype, rank, world_size)


def seed_everything(seed: int) -> None:
    import numpy
    import torch

    random.seed(seed)
    numpy.random.seed(seed)
    torch.manual_seed(seed)
