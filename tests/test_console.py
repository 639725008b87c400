"""What a user sees: the command line run under a pseudo-terminal (progress bars, log lines above them) and
with its output piped (plain lines, no escape codes)."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

from test_cli import write_spec

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
COMMAND = [sys.executable, "-c", "from homofit.cli import main; main()"]


def run_in_terminal(args: list[str], timeout: float = 240.0) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal; returns (exit code, everything it wrote)."""
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160", "LINES": "50"}
    env.pop("CI", None)
    process = subprocess.Popen([*COMMAND, *args], stdin=subprocess.DEVNULL, stdout=follower, stderr=follower,
                               env=env, close_fds=True)
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], timeout)
        if not ready:
            process.kill()
            raise AssertionError("the command wrote nothing for too long")
        try:
            data = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process has ended
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return process.wait(timeout=30), b"".join(chunks).decode("utf-8", errors="replace")


def screen_lines(output: str) -> list[str]:
    """The text segments as they were drawn: escape codes removed, split at line feeds and carriage returns."""
    return [segment for segment in re.split(r"[\r\n]+", ANSI.sub("", output)) if segment.strip()]


def test_a_terminal_shows_a_bar_for_every_phase_and_log_lines_above_it(tiny_bert: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec.yaml", tiny_bert, train={"log_every": 5})
    code, output = run_in_terminal(["train", str(spec), "--run-dir", str(tmp_path / "run")])
    assert code == 0, output
    lines = screen_lines(output)
    bars = [line for line in lines if "ETA" in line]
    for phase in ("tokenize train", "tokenize dev", "eval dev", "eval test", "train"):
        assert any(line.lstrip().startswith(phase) for line in bars), f"no bar for {phase}:\n" + "\n".join(bars)
    assert any(re.search(r"train .* \d+/10 .*loss \d\.\d{4}", line) for line in bars)
    # a log line is printed on its own line, above the bars, never glued into one
    logged = [line for line in lines if "INFO" in line or "WARNING" in line]
    assert any("tokenized train" in line for line in logged) and any("step 10: dev f1" in line for line in logged)
    assert not [line for line in logged if "ETA" in line]
    assert "scores" in output and "best dev f1" in output  # the summary


def test_piped_output_has_plain_progress_lines_and_no_escape_codes(tiny_bert: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec.yaml", tiny_bert, train={"log_every": 5})
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    result = subprocess.run([*COMMAND, "train", str(spec), "--run-dir", str(tmp_path / "run")],
                            capture_output=True, text=True, env=env, timeout=240, check=False)
    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stderr + result.stdout and "\r" not in result.stderr
    progress = [line for line in result.stderr.splitlines() if "ETA" in line]
    assert [re.search(r"step (\d+)/10", line).group(1) for line in progress] == ["5", "10"]
    assert all(re.search(r"loss \d\.\d{4}  lr \S+  [\d.]+ steps/s  ETA \d\d:\d\d:\d\d", line) for line in progress)
    assert "tokenized train: 48 examples -> 71 inputs" in result.stderr
    lines = result.stderr.splitlines()  # one unwrapped, unpadded line per message
    assert all(line == line.rstrip() for line in lines)
    assert any(re.fullmatch(r"INFO +training 10 steps from step 0 \(.*= 16\)", line) for line in lines), lines
    assert "best dev f1" in result.stdout  # the summary goes to standard output, the progress to standard error
