"""A corpus of broken inputs, tried through the command line as a user would: each must exit with code 2 and
a message that names the file, line or key, with no traceback, no run directory left behind and the user's
files untouched. Legal but unusual inputs (CRLF, a byte-order mark, a label unseen in training, grad_accum
beyond the number of batches) must work."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from homofit.cli import app

DATA = Path(__file__).parent / "data"
NER = DATA / "ner"
GENERATION = DATA / "generation"

BASE_TASKS: dict[str, dict[str, Any]] = {
    "ner": {"task": {"type": "ner"},
            "data": {"train": str(NER / "train.conll"), "dev": str(NER / "dev.conll"),
                     "test": str(NER / "test.conll")}},
    "classification": {"task": {"type": "classification"},
                       "data": {"train": str(DATA / "classification" / "sst2_train.tsv"),
                                "dev": str(DATA / "classification" / "sst2_dev.tsv"), "header": True,
                                "columns": {"label": "label", "text": "sentence"}}},
    "relation": {"task": {"type": "relation"},
                 "data": {"train": str(DATA / "relation" / "semeval_train.txt"),
                          "dev": str(DATA / "relation" / "semeval_test.txt")}},
    "qa": {"task": {"type": "qa"},
           "data": {"train": str(DATA / "qa" / "squad_train.json"), "dev": str(DATA / "qa" / "squad_eval.json")}},
    "translation": {"task": {"type": "translation", "generation": {"max_new_tokens": 4}},
                    "data": {"train": str(GENERATION / "multi30k" / "train.en")}},
    "summarization": {"task": {"type": "summarization", "generation": {"max_new_tokens": 4}},
                      "data": {"train": str(GENERATION / "scitldr" / "train.jsonl"),
                               "columns": {"document": "source", "summary": "target"}}},
    "dialogue": {"task": {"type": "dialogue", "generation": {"max_new_tokens": 4}},
                 "data": {"train": str(GENERATION / "sgd" / "train")}},
}


def spec_for(folder: Path, model: Path, family: str = "ner", **sections: dict[str, Any]) -> dict[str, Any]:
    base = BASE_TASKS[family]
    spec = {
        "task": dict(base["task"]),
        "data": {"max_length": 64, **base["data"]},
        "model": {"name_or_path": str(model)},
        "optim": {"lr": 1.0e-3},
        "train": {"max_steps": 1, "batch_size": 8, "device": "cpu", "precision": "fp32",
                  "eval_before_training": False},
        "output": {"dir": str(folder / "runs")},
    }
    for name, values in sections.items():
        spec[name] = {**spec.get(name, {}), **values}
    return spec


def write_yaml(path: Path, spec: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def invoke(*args: Any) -> Any:
    return CliRunner().invoke(app, [str(arg) for arg in args])


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file under `folder` with its hash, to show that nothing of the user's was changed."""
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


@dataclass
class Case:
    """A broken input: `make(folder, model, checkpoint)` writes it under `folder` and returns the
    command-line arguments; the message must hold every one of `expected` (whitespace folded)."""

    name: str
    make: Callable[[Path, Path, Path], list[Any]]
    expected: tuple[str, ...]


def latin1_conll(folder: Path) -> Path:
    lines = (NER / "train.conll").read_text(encoding="utf-8").splitlines()
    lines[5] = "café\tO"  # line 6
    path = folder / "latin1.conll"
    path.write_bytes("\n".join(lines).encode("latin-1", errors="replace") + b"\n")
    return path


def train_with(folder: Path, model: Path, family: str = "ner", overrides: tuple[str, ...] = (),
               **sections: dict[str, Any]) -> list[Any]:
    spec = write_yaml(folder / "spec.yaml", spec_for(folder, model, family, **sections))
    return ["train", spec, *overrides]


def data_file(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def damaged_checkpoint(folder: Path, checkpoint: Path, damage: Callable[[Path], None]) -> Path:
    copy = folder / "checkpoint"
    shutil.copytree(checkpoint, copy)
    damage(copy)
    return copy


def truncate(path: Path, size: int) -> None:
    with path.open("r+b") as handle:
        handle.truncate(size)


def edit_json(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))
    change(document)
    path.write_text(json.dumps(document), encoding="utf-8")


def read_only(path: Path) -> Path:
    """A folder this user cannot write in: read-only permission bits, or for root (who ignores them) a
    folder under /proc, where nobody can create a file."""
    if os.geteuid() == 0:
        return Path("/proc") / path.name
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(stat.S_IRUSR | stat.S_IXUSR)
    return path


CASES = [
    # -- files that are not UTF-8 ---------------------------------------------------------------------------
    Case("spec in Latin-1", lambda f, m, c: ["train", data_file(
        f, "spec.yaml", yaml.safe_dump(spec_for(f, m)).encode() + "# réglé\n".encode("latin-1"))],
         ("spec.yaml:", "not UTF-8", "iconv")),
    Case("CoNLL train in Latin-1", lambda f, m, c: train_with(f, m, data={"train": str(latin1_conll(f))}),
         ("latin1.conll:6: not UTF-8", "byte 0xe9", "iconv -f latin1 -t utf-8")),
    Case("JSONL NER in Latin-1", lambda f, m, c: train_with(f, m, data={"train": str(data_file(
        f, "train.jsonl",
        '{"tokens": ["a"], "tags": ["O"]}\n{"tokens": ["caf\xe9"], "tags": ["O"]}\n'.encode("latin-1")))}),
         ("train.jsonl:2: not UTF-8",)),
    Case("TSV in Latin-1, error on line 6", lambda f, m, c: train_with(f, m, "classification", data={
        "train": str(data_file(f, "train.tsv",
                               ("label\tsentence\n" + "0\tfine\n" * 4 + "1\tcaf\xe9\n").encode("latin-1")))}),
         ("train.tsv:6: not UTF-8",)),
    Case("UTF-16 data file", lambda f, m, c: train_with(f, m, data={"train": str(data_file(
        f, "train.conll", "a\tO\n".encode("utf-16")))}), ("train.conll: the file is UTF-16", "iconv")),
    Case("eval --data in Latin-1", lambda f, m, c: ["eval", "--checkpoint", c, "--data", latin1_conll(f)],
         ("latin1.conll:6: not UTF-8",)),
    Case("predict a Latin-1 file", lambda f, m, c: ["predict", "--checkpoint", c, data_file(
        f, "input.txt", "one line\ncaf\xe9 au lait\n".encode("latin-1"))], ("input.txt:2: not UTF-8",)),
    Case("SQuAD JSON in Latin-1", lambda f, m, c: train_with(f, m, "qa", data={"train": str(data_file(
        f, "train.json", json.dumps({"data": [{"title": "t", "paragraphs": [{"context": "caf\xe9", "qas": []}]}]},
                                    ensure_ascii=False).encode("latin-1")))}),
         ("train.json:", "not UTF-8")),
    # -- damaged or incomplete checkpoints ------------------------------------------------------------------
    Case("truncated weights", lambda f, m, c: ["eval", "--checkpoint", damaged_checkpoint(
        f, c, lambda d: truncate(d / "model.safetensors", 1000))], ("checkpoint damaged", "model.safetensors")),
    Case("empty weights", lambda f, m, c: ["eval", "--checkpoint", damaged_checkpoint(
        f, c, lambda d: truncate(d / "model.safetensors", 0))], ("checkpoint damaged", "model.safetensors")),
    Case("no weights, only an orphaned temporary file", lambda f, m, c: ["eval", "--checkpoint", damaged_checkpoint(
        f, c, lambda d: (d / "model.safetensors").rename(d / "model.safetensors.tmp"))],
         ("checkpoint damaged", "no model weights")),
    Case("missing config.json", lambda f, m, c: ["eval", "--checkpoint", damaged_checkpoint(
        f, c, lambda d: (d / "config.json").unlink())], ("checkpoint damaged", "config.json")),
    Case("config.json not JSON", lambda f, m, c: ["predict", "--checkpoint", damaged_checkpoint(
        f, c, lambda d: (d / "config.json").write_text("{")), "a b c"], ("checkpoint damaged", "config.json")),
    Case("homofit.json spec no longer valid", lambda f, m, c: ["eval", "--checkpoint", damaged_checkpoint(
        f, c, lambda d: edit_json(d / "homofit.json", lambda doc: doc["spec"]["optim"].update(lr=-1)))],
         ("checkpoint damaged", "homofit.json", "optim.lr")),
    Case("missing tokenizer", lambda f, m, c: ["eval", "--checkpoint", damaged_checkpoint(
        f, c, lambda d: [path.unlink() for path in d.glob("*")
                         if path.name.startswith(("tokenizer", "vocab", "special"))])],
         ("checkpoint damaged", "tokenizer")),
    Case("checkpoint folder does not exist", lambda f, m, c: ["eval", "--checkpoint", f / "nowhere"],
         ("nowhere",)),
    Case("fine-tune from a damaged checkpoint", lambda f, m, c: train_with(f, damaged_checkpoint(
        f, c, lambda d: truncate(d / "model.safetensors", 10)), data={}), ("checkpoint damaged", "model.safetensors")),
    # -- output paths that cannot be written ----------------------------------------------------------------
    Case("output.dir is a file", lambda f, m, c: train_with(f, m, output={"dir": str(data_file(f, "runs", "x"))}),
         ("output.dir", "runs", "not a folder")),
    Case("output.dir read-only", lambda f, m, c: train_with(f, m, output={"dir": str(read_only(f / "locked"))}),
         ("output.dir", "locked", "cannot write")),
    Case("--run-dir under a read-only folder", lambda f, m, c: [*train_with(f, m), "--run-dir",
                                                                read_only(f / "locked") / "run"],
         ("--run-dir", "locked", "cannot write")),
    Case("--run-dir under a file", lambda f, m, c: [*train_with(f, m), "--run-dir", data_file(f, "plain", "x") / "run"],
         ("--run-dir", "plain is a file, not a folder")),
    Case("predict --out under a file", lambda f, m, c: ["predict", "--checkpoint", c, "a b", "--out",
                                                        data_file(f, "plain", "x") / "p.jsonl"],
         ("--out", "plain is a file, not a folder")),
    Case("eval --out is a file", lambda f, m, c: ["eval", "--checkpoint", c, "--out", data_file(f, "out", "x")],
         ("--out", "out", "not a folder")),
    Case("predict --out under a read-only folder", lambda f, m, c: ["predict", "--checkpoint", c, "a b",
                                                                    "--out", read_only(f / "locked") / "p.jsonl"],
         ("--out", "locked", "cannot write")),
    # -- problems that used to surface only after training started -------------------------------------------
    Case("max_length beyond the position embeddings", lambda f, m, c: train_with(f, m, data={"max_length": 512}),
         ("data.max_length", "512", "128")),
    Case("early-stopping metric the task never reports", lambda f, m, c: train_with(
        f, m, train={"max_steps": 1, "early_stopping": {"metric": "bleu", "patience": 1}}),
         ("train.early_stopping.metric", "bleu")),
    Case("JSONL NER training file without tags", lambda f, m, c: train_with(f, m, data={"train": str(data_file(
        f, "train.jsonl", '{"tokens": ["a", "b"]}\n'))}), ("train.jsonl:1", "tags")),
    # -- JSON values of the wrong shape ----------------------------------------------------------------------
    Case("NER tokens: null", lambda f, m, c: train_with(f, m, data={"train": str(data_file(
        f, "train.jsonl", '{"tokens": null, "tags": ["O"]}\n'))}), ("train.jsonl:1", "tokens")),
    Case("translation target is a number", lambda f, m, c: train_with(f, m, "translation", data={"train": str(data_file(
        f, "train.jsonl", '{"source": "a b", "target": 3}\n'))}), ("train.jsonl:1", "target")),
    Case("SQuAD paragraphs as an object", lambda f, m, c: train_with(f, m, "qa", data={"train": str(data_file(
        f, "train.json", json.dumps({"data": [{"title": "t", "paragraphs": {"context": "x"}}]})))}),
         ("train.json", "data[0].paragraphs", "list")),
    Case("SQuAD qas as strings", lambda f, m, c: train_with(f, m, "qa", data={"train": str(data_file(
        f, "train.json", json.dumps({"data": [{"title": "t", "paragraphs": [{"context": "x y", "qas": ["q?"]}]}]})))}),
         ("train.json", "data[0].paragraphs[0].qas[0]")),
    Case("SQuAD answer_start not a number", lambda f, m, c: train_with(f, m, "qa", data={"train": str(data_file(
        f, "train.json", json.dumps({"data": [{"title": "t", "paragraphs": [{"context": "x y", "qas": [
            {"id": "1", "question": "q?", "answers": [{"text": "x", "answer_start": "zero"}]}]}]}]})))}),
         ("train.json", "answer_start")),
    Case("summarization summary is a list of numbers", lambda f, m, c: train_with(f, m, "summarization", data={
        "train": str(data_file(f, "train.jsonl", '{"source": "a b", "target": [1, 2]}\n'))}),
         ("train.jsonl:1", "target")),
    Case("classification label is an object", lambda f, m, c: train_with(f, m, "classification", data={
        "train": str(data_file(f, "train.jsonl", '{"text": "a", "label": {"x": 1}}\n{"text": "b", "label": "y"}\n')),
        "columns": {"text": "text", "label": "label"}, "header": None}), ("train.jsonl:1", "label must be a string")),
    Case("SGD utterance is a number", lambda f, m, c: train_with(f, m, "dialogue", data={"train": str(data_file(
        f, "dialogues_001.json", json.dumps([{"dialogue_id": "1", "turns": [
            {"speaker": "USER", "utterance": 5}, {"speaker": "SYSTEM", "utterance": "x"}]}])))}),
         ("dialogues_001.json#1", "turns[0].utterance must be text")),
    Case("NER tag null", lambda f, m, c: train_with(f, m, data={"train": str(data_file(
        f, "train.jsonl", '{"tokens": ["a", "b"], "tags": ["O", null]}\n'))}),
         ("train.jsonl:1", "tags must be tag names")),
    # -- empty targets in generation training data -----------------------------------------------------------
    Case("translation: empty target", lambda f, m, c: train_with(f, m, "translation", data={"train": str(data_file(
        f, "train.jsonl", '{"source": "a b", "target": "c"}\n{"source": "d", "target": "  "}\n'))}),
         ("train.jsonl:2", "empty target", "data.skip_empty_targets")),
    Case("summarization: empty summary", lambda f, m, c: train_with(f, m, "summarization", data={
        "train": str(data_file(f, "train.jsonl", '{"source": "a b", "target": ""}\n'))}),
         ("train.jsonl:1", "empty target")),
    Case("dialogue: empty response", lambda f, m, c: train_with(f, m, "dialogue", data={"train": str(data_file(
        f, "train.jsonl", '{"turns": ["hi"], "response": ""}\n'))}),
         ("train.jsonl:1", "empty target")),
    # -- the spec itself --------------------------------------------------------------------------------------
    Case("duplicate section in the spec", lambda f, m, c: ["train", data_file(
        f, "spec.yaml", yaml.safe_dump(spec_for(f, m), sort_keys=False) + "train:\n  epochs: 2\n")],
         ("spec.yaml:", "duplicate key 'train'", "line")),
    Case("duplicate nested key in the spec", lambda f, m, c: ["validate", data_file(
        f, "spec.yaml", "task:\n  type: ner\n  type: qa\n")], ("spec.yaml:3", "duplicate key 'task.type'", "line 2")),
    Case("spec is a folder", lambda f, m, c: ["validate", f], ("is a folder",)),
    Case("data file is a folder", lambda f, m, c: train_with(f, m, data={"train": str(f)}), ("is a folder",)),
    Case("gzip file that is not gzip", lambda f, m, c: train_with(f, m, data={"train": str(data_file(
        f, "train.conll.gz", "a\tO\n"))}), ("train.conll.gz", "gzip")),
]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> Path:
    folder = tmp_path_factory.mktemp("checkpoint")
    spec = write_yaml(folder / "spec.yaml", spec_for(folder, tiny_bert, data={"dev": None}))
    result = invoke("train", spec, "--run-dir", folder / "run")
    assert result.exit_code == 0, result.output
    return folder / "run" / "checkpoints" / "last"


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_broken_input_is_one_clear_message(case: Case, tmp_path: Path, tiny_bert: Path, checkpoint: Path) -> None:
    folder = tmp_path / "user"
    folder.mkdir()
    args = case.make(folder, tiny_bert, checkpoint)
    before = fingerprint(folder)
    try:
        result = invoke(*args)
    finally:
        for path in folder.rglob("*"):  # let pytest clean up the read-only folders
            if path.is_dir():
                path.chmod(stat.S_IRWXU)
    message = " ".join(result.stderr.split())
    assert result.exit_code == 2, f"exit {result.exit_code}: {result.output}\n{result.exception!r}"
    assert "Traceback" not in result.output and message.startswith("error: "), result.output
    for fragment in case.expected:
        assert fragment in message, f"{fragment!r} not in: {message}"
    assert len(result.stderr.strip().splitlines()) <= 4, result.stderr  # a line or two, not a dump
    assert fingerprint(folder) == before  # nothing of the user's changed, no run directory written
    assert not (folder / "runs").is_dir() or not any((folder / "runs").iterdir())


# -- legal but unusual inputs work --------------------------------------------------------------------------


def test_crlf_and_byte_order_mark_read_like_plain_lf(tmp_path: Path, tiny_bert: Path) -> None:
    from homofit.config import load_config
    from homofit.tasks import build_task

    plain = (NER / "train.conll").read_text(encoding="utf-8")
    unusual = data_file(tmp_path, "train.conll", ("\ufeff-DOCSTART- -X- O O\n\n" + plain).replace("\n", "\r\n"))
    spec = spec_for(tmp_path, tiny_bert, data={"train": str(unusual)})
    spec_file = data_file(tmp_path, "spec.yaml", ("\ufeff" + yaml.safe_dump(spec)).replace("\n", "\r\n"))
    config = load_config(spec_file)
    task = build_task(config.task)
    read = [(example.tokens, example.tags) for example in task.read(unusual, config.data)]
    expected = [(example.tokens, example.tags) for example in task.read(NER / "train.conll", config.data)]
    assert read == expected and read[0][0][0] == "@paulwalk"  # no sentence of -DOCSTART-, no BOM on a token
    result = invoke("train", spec_file, "--run-dir", tmp_path / "run")
    assert result.exit_code == 0, result.output


def test_a_label_unseen_in_training_is_counted_and_named(tmp_path: Path, tiny_bert: Path) -> None:
    rows = (DATA / "classification" / "sst2_train.tsv").read_text(encoding="utf-8").splitlines()
    dev = data_file(tmp_path, "dev.tsv", "\n".join([rows[0], *rows[1:9], "7\ta label the training data never had",
                                                    "7\tand another one"]) + "\n")
    spec = write_yaml(tmp_path / "spec.yaml", spec_for(tmp_path, tiny_bert, "classification", data={"dev": str(dev)}))
    result = invoke("train", spec, "--run-dir", tmp_path / "run")
    assert result.exit_code == 0, result.output
    log = " ".join((tmp_path / "run" / "train.log").read_text(encoding="utf-8").split())
    assert "data.dev: labels never seen in training: 7 (2)" in log
    report = json.loads((tmp_path / "run" / "reports" / "dev.json").read_text(encoding="utf-8"))
    assert report["unseen_labels"] == {"7": 2}


def test_skip_empty_targets_drops_and_counts_them(tmp_path: Path, tiny_bert: Path) -> None:
    train = data_file(tmp_path, "train.jsonl", '{"source": "a b", "target": "c d"}\n{"source": "e", "target": ""}\n'
                                               '{"source": "f g", "target": "h"}\n')
    spec = write_yaml(tmp_path / "spec.yaml", spec_for(tmp_path, tiny_bert, "translation", data={
        "train": str(train), "skip_empty_targets": True}))
    result = invoke("train", spec, "--run-dir", tmp_path / "run")
    assert result.exit_code == 0, result.output
    log = " ".join((tmp_path / "run" / "train.log").read_text(encoding="utf-8").split())
    assert "data.train: 1 of 3 examples have an empty target and are skipped" in log


def test_backbone_weights_missing_from_a_model_folder_are_named(tmp_path: Path, tiny_bert: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """Only a new task head may start from random values; a missing backbone weight is said out loud."""
    from safetensors.torch import load_file, save_file

    model = tmp_path / "model"
    shutil.copytree(tiny_bert, model)
    weights = load_file(model / "model.safetensors")
    dropped = sorted(key for key in weights if "layer.1.output.dense" in key)
    save_file({key: value for key, value in weights.items() if key not in dropped}, model / "model.safetensors",
              metadata={"format": "pt"})
    result = invoke(*train_with(tmp_path, model), "--run-dir", tmp_path / "run")
    assert result.exit_code == 0, result.output
    message = " ".join(caplog.text.split())  # the console's log handler is installed by main(), not here
    assert f"{len(dropped)} weights are not in the checkpoint and start from random values" in message
    assert "layer.1.output.dense" in message and "classifier" not in message.split("random values:")[1][:200]


def test_predict_takes_a_long_json_line_as_text_not_as_a_file_name(tmp_path: Path, tiny_bert: Path) -> None:
    """A raw-text input longer than any file name (a QA question with its context) is predicted on, for every
    family that reads raw text, never taken for a path (OSError: File name too long)."""
    spec = spec_for(tmp_path, tiny_bert, "qa", data={"max_length": 128})
    result = invoke("train", write_yaml(tmp_path / "spec.yaml", spec), "--run-dir", tmp_path / "run")
    assert result.exit_code == 0, result.output
    line = json.dumps({"question": "Where is it?", "context": "It is in the big old house. " * 20})
    predicted = invoke("predict", "--checkpoint", tmp_path / "run" / "checkpoints" / "best", line)
    assert predicted.exit_code == 0, predicted.output
    assert len(predicted.stdout.strip().splitlines()) == 1


def test_eval_out_never_overwrites_an_earlier_eval(tmp_path: Path, checkpoint: Path) -> None:
    out = tmp_path / "scores"
    first = invoke("eval", "--checkpoint", checkpoint, "--out", out)
    assert first.exit_code == 0, first.output
    before = fingerprint(out)
    again = invoke("eval", "--checkpoint", checkpoint, "--out", out)
    assert again.exit_code == 2 and "already holds test.json from an earlier eval" in " ".join(again.stderr.split())
    assert fingerprint(out) == before


def test_predict_reads_standard_input_and_refuses_a_mistyped_path(tmp_path: Path, checkpoint: Path) -> None:
    piped = CliRunner().invoke(app, ["predict", "--checkpoint", str(checkpoint), "-"], input="one line\nanother one\n")
    assert piped.exit_code == 0, piped.output
    assert len(piped.stdout.strip().splitlines()) == 2
    typo = invoke("predict", "--checkpoint", checkpoint, str(tmp_path / "inptu.txt"))
    assert typo.exit_code == 2 and "inptu.txt: no such file; to predict on this text itself, add --text." in \
        " ".join(typo.stderr.split())
    forced = invoke("predict", "--checkpoint", checkpoint, "--text", "notes.txt")
    assert forced.exit_code == 0 and len(forced.stdout.strip().splitlines()) == 1


def test_version_and_init_in_any_case() -> None:
    from homofit import __version__

    version = invoke("--version")
    assert version.exit_code == 0 and version.stdout.startswith(f"homofit {__version__}")
    assert invoke("init", "NER").stdout == invoke("init", "ner").stdout != ""
