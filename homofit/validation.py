"""`homofit validate`: read every data file of a spec and its labels, without loading a model."""

from __future__ import annotations

from typing import Any

from homofit.errors import HomofitError
from homofit.tasks import build_task
from homofit.train import check_training_spec, read_splits, unseen_label_notes


def validate_spec(config: Any) -> list[str]:
    """Lines describing what was checked; raises HomofitError on the first problem."""
    if config.data.train is None:
        raise HomofitError("data.train: no training file given; set data.train in the spec or data.train=PATH.")
    from homofit.model import check_model_fits, load_tokenizer
    from homofit.rundir import check_writable

    task = build_task(config.task)
    check_training_spec(config, task)
    check_model_fits(config)
    check_writable(config.output.dir, "output.dir")
    if config.sweep is not None:
        from homofit.sweep import check_space, sweep_plan

        sweep_plan(config)
        check_space(config)
    splits = read_splits(task, config)
    tokenizer = load_tokenizer(config.model.name_or_path, config.model)
    task.initialize(splits["train"][1], tokenizer, None)
    lines = [f"{name}: {path} ({len(examples)} examples)" for name, (path, examples) in splits.items()]
    if task.labels:
        lines.append(f"labels ({len(task.labels)}): {', '.join(task.labels)}")
    lines += [f"warning: {note}" for note in unseen_label_notes(task, splits)]
    return lines
