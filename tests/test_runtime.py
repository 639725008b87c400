"""The CPU path's allocator setting: freed tensor memory is reused instead of faulted in again every step."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from homofit import runtime

# A training step's buffers: a 48 MB one (MiniLM's word-embedding gradient is 47 MB), ten of 3 MB and twenty
# of 1 MB (activations), each zero-filled (every page touched); all freed at the end of the step. The minor page
# faults the process takes for steps 4 to 8, once the first steps have settled the heap.
FAULTS = """
import resource, torch
from homofit.runtime import keep_freed_memory
applied = keep_freed_memory()
for step in range(8):
    if step == 3:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    buffers = [torch.zeros(12 * 1024 * 1024)] + [torch.zeros(750_000) for _ in range(10)]
    buffers += [torch.zeros(250_000) for _ in range(20)]
    del buffers
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(**environment: str) -> tuple[str, int]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("MALLOC_")}
    env.pop("GLIBC_TUNABLES", None)
    result = subprocess.run([sys.executable, "-c", FAULTS], env={**env, **environment}, capture_output=True,
                            text=True, check=True)
    applied, faults = result.stdout.split()
    return applied, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is a Linux setting")
def test_freed_blocks_are_reused_not_faulted_in_again() -> None:
    applied, tuned = page_faults()
    skipped, untuned = page_faults(HOMOFIT_MALLOC_TUNING="0")
    assert (applied, skipped) == ("True", "False")
    large = 48 * 1024 * 1024 // os.sysconf("SC_PAGE_SIZE")  # the pages of the 48 MB buffer
    assert untuned >= large // 2  # without it glibc maps the large one anew (each step, or most)
    assert tuned < large // 10  # the pages of the first steps serve the later ones


def test_the_users_own_allocator_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in runtime._USER_ALLOCATOR_VARIABLES:
        monkeypatch.setenv(name, "1")
        assert runtime.keep_freed_memory() is False
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOMOFIT_MALLOC_TUNING", "0")
    assert runtime.keep_freed_memory() is False


def test_only_a_cpu_run_sets_it(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(runtime, "keep_freed_memory", lambda: calls.append(True) or True)
    assert runtime.build_runtime("cpu", "fp32").device.type == "cpu"
    assert calls == [True]
