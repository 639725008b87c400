"""The plain Hugging Face extractive-QA recipe, run on a homofit QA spec, for side-by-side benchmarks.

It follows transformers' `run_qa.py` example and its `utils_qa.py`: the tokenizer's overflowing windows
(`stride` = doc_stride) with offset mappings; training windows labelled with the answer's first and last
token, or the CLS token when the window does not hold the whole answer; AutoModelForQuestionAnswering,
Trainer + TrainingArguments; `postprocess_qa_predictions` (n-best start/end search, windows merged per
question, answer cut from the context by character offsets) and the official SQuAD v1.1 scorer.
It reads the same spec as `homofit train` (data files, model, optimizer, schedule, batch size, epochs,
seed, precision, data.max_train_samples), so the two runs differ only in the training code.

    python scripts/reference_qa.py configs/squad_v1.1.yaml [key=value ...] --out reference.json

There is no model selection: the model after the last step scores data.test (data.dev when no test).
"""

from __future__ import annotations

import argparse
import collections
import inspect
import json
import math
import re
import string
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

SCHEDULES = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}


@dataclass
class Settings:
    """Everything the recipe takes from the spec, as plain values."""

    train: Path
    evaluate: Path
    model_path: str
    max_length: int
    doc_stride: int
    max_train_samples: int | None
    max_eval_samples: int | None
    n_best: int
    max_answer_length: int
    lr: float
    weight_decay: float
    betas: tuple[float, float]
    eps: float
    schedule: str
    warmup_steps: int
    warmup_ratio: float
    epochs: float
    max_steps: int | None
    batch_size: int
    eval_batch_size: int
    grad_accum: int
    max_grad_norm: float | None
    precision: str
    device: str
    log_every: int
    seed: int


def settings_from_spec(spec_path: Path, overrides: list[str], model_path: str | None = None) -> Settings:
    """Read a homofit spec with homofit's own loader, so defaults and overrides resolve identically."""
    from homofit.config import load_config
    from homofit.model import resolve_model_path

    spec = load_config(spec_path, overrides)
    unsupported = {
        "task.type": (spec.task.type, "qa"),
        "optim.name": (spec.optim.name, "adamw"),
        "model.freeze": (spec.model.freeze, "none"),
        "model.dropout": (spec.model.dropout, None),
        "data.columns": (spec.data.columns, {}),
    }
    for key, (value, expected) in unsupported.items():
        if value != expected:
            raise SystemExit(f"reference_qa.py: {key}={value!r} is not mapped to the Trainer recipe "
                             f"(only {expected!r}).")
    if spec.task.version == "v2":
        raise SystemExit("reference_qa.py: SQuAD v2 is not mapped (the recipe here is the v1.1 one).")
    evaluate = spec.data.test or spec.data.dev
    if evaluate is None:
        raise SystemExit("reference_qa.py: the spec needs data.test or data.dev to score.")
    return Settings(
        train=spec.data.train, evaluate=evaluate,
        model_path=model_path or resolve_model_path(spec.model.name_or_path),
        max_length=spec.data.max_length, doc_stride=spec.data.stride,
        max_train_samples=spec.data.max_train_samples, max_eval_samples=spec.data.max_eval_samples,
        n_best=spec.task.n_best, max_answer_length=spec.task.max_answer_length,
        lr=spec.optim.lr, weight_decay=spec.optim.weight_decay, betas=tuple(spec.optim.betas), eps=spec.optim.eps,
        schedule=spec.optim.schedule, warmup_steps=spec.optim.warmup_steps, warmup_ratio=spec.optim.warmup_ratio,
        epochs=spec.train.epochs, max_steps=spec.train.max_steps, batch_size=spec.train.batch_size,
        eval_batch_size=spec.train.eval_batch_size or spec.train.batch_size, grad_accum=spec.train.grad_accum,
        max_grad_norm=spec.train.max_grad_norm, precision=spec.train.precision, device=spec.train.device,
        log_every=spec.train.log_every, seed=spec.train.seed,
    )


# -- data (the `datasets` "squad" layout: one dict of columns) ------------------------------------------


def read_squad(path: Path, limit: int | None) -> dict[str, list]:
    """Columns id/title/context/question/answers, answers as {"text": [...], "answer_start": [...]}."""
    columns: dict[str, list] = {"id": [], "title": [], "context": [], "question": [], "answers": []}
    for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                columns["id"].append(qa["id"])
                columns["title"].append(article["title"])
                columns["context"].append(paragraph["context"])
                columns["question"].append(qa["question"])
                columns["answers"].append({"text": [answer["text"] for answer in qa["answers"]],
                                           "answer_start": [answer["answer_start"] for answer in qa["answers"]]})
    if limit:
        columns = {name: values[:limit] for name, values in columns.items()}
    return columns


def prepare_train_features(examples: dict[str, list], tokenizer: Any, max_length: int, doc_stride: int) -> list[dict]:
    """run_qa.py's `prepare_train_features` (question first: the tokenizer pads on the right)."""
    questions = [question.lstrip() for question in examples["question"]]
    tokenized = tokenizer(questions, examples["context"], truncation="only_second", max_length=max_length,
                          stride=doc_stride, return_overflowing_tokens=True, return_offsets_mapping=True)
    sample_mapping = tokenized.pop("overflow_to_sample_mapping")
    offset_mapping = tokenized.pop("offset_mapping")
    features = []
    for i, offsets in enumerate(offset_mapping):
        input_ids = tokenized["input_ids"][i]
        cls_index = input_ids.index(tokenizer.cls_token_id)
        sequence_ids = tokenized.sequence_ids(i)
        answers = examples["answers"][sample_mapping[i]]
        feature = {key: tokenized[key][i] for key in tokenized}
        if len(answers["answer_start"]) == 0:
            feature["start_positions"] = feature["end_positions"] = cls_index
        else:
            start_char = answers["answer_start"][0]
            end_char = start_char + len(answers["text"][0])
            token_start_index = 0
            while sequence_ids[token_start_index] != 1:
                token_start_index += 1
            token_end_index = len(input_ids) - 1
            while sequence_ids[token_end_index] != 1:
                token_end_index -= 1
            if not (offsets[token_start_index][0] <= start_char and offsets[token_end_index][1] >= end_char):
                feature["start_positions"] = feature["end_positions"] = cls_index
            else:
                while token_start_index < len(offsets) and offsets[token_start_index][0] <= start_char:
                    token_start_index += 1
                feature["start_positions"] = token_start_index - 1
                while offsets[token_end_index][1] >= end_char:
                    token_end_index -= 1
                feature["end_positions"] = token_end_index + 1
        features.append(feature)
    return features


def prepare_validation_features(examples: dict[str, list], tokenizer: Any, max_length: int,
                                doc_stride: int) -> tuple[list[dict], list[dict]]:
    """run_qa.py's `prepare_validation_features`: (model inputs, [example_id + offsets (None off-context)])."""
    questions = [question.lstrip() for question in examples["question"]]
    tokenized = tokenizer(questions, examples["context"], truncation="only_second", max_length=max_length,
                          stride=doc_stride, return_overflowing_tokens=True, return_offsets_mapping=True)
    sample_mapping = tokenized.pop("overflow_to_sample_mapping")
    offset_mapping = tokenized.pop("offset_mapping")
    inputs, meta = [], []
    for i in range(len(tokenized["input_ids"])):
        sequence_ids = tokenized.sequence_ids(i)
        inputs.append({key: tokenized[key][i] for key in tokenized})
        meta.append({"example_id": examples["id"][sample_mapping[i]],
                     "offset_mapping": [offset if sequence_ids[k] == 1 else None
                                        for k, offset in enumerate(offset_mapping[i])]})
    return inputs, meta


def postprocess_qa_predictions(examples: dict[str, list], features: list[dict], predictions: tuple[Any, Any],
                               n_best_size: int, max_answer_length: int) -> dict[str, str]:
    """utils_qa.py's `postprocess_qa_predictions` for SQuAD v1 (no null answer)."""
    import numpy as np

    all_start_logits, all_end_logits = predictions
    example_id_to_index = {k: i for i, k in enumerate(examples["id"])}
    features_per_example = collections.defaultdict(list)
    for i, feature in enumerate(features):
        features_per_example[example_id_to_index[feature["example_id"]]].append(i)
    all_predictions = {}
    for example_index, example_id in enumerate(examples["id"]):
        prelim_predictions = []
        for feature_index in features_per_example[example_index]:
            start_logits = all_start_logits[feature_index]
            end_logits = all_end_logits[feature_index]
            offset_mapping = features[feature_index]["offset_mapping"]
            start_indexes = np.argsort(start_logits)[-1 : -n_best_size - 1 : -1].tolist()
            end_indexes = np.argsort(end_logits)[-1 : -n_best_size - 1 : -1].tolist()
            for start_index in start_indexes:
                for end_index in end_indexes:
                    if (start_index >= len(offset_mapping) or end_index >= len(offset_mapping)
                            or offset_mapping[start_index] is None or offset_mapping[end_index] is None):
                        continue
                    if end_index < start_index or end_index - start_index + 1 > max_answer_length:
                        continue
                    prelim_predictions.append({
                        "offsets": (offset_mapping[start_index][0], offset_mapping[end_index][1]),
                        "score": start_logits[start_index] + end_logits[end_index],
                    })
        best = sorted(prelim_predictions, key=lambda x: x["score"], reverse=True)[:n_best_size]
        context = examples["context"][example_index]
        all_predictions[example_id] = context[best[0]["offsets"][0] : best[0]["offsets"][1]] if best else "empty"
    return all_predictions


# -- the official SQuAD v1.1 evaluation script's scorer ---------------------------------------------------


def normalize_answer(s: str) -> str:
    def remove_articles(text: str) -> str:
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text: str) -> str:
        return " ".join(text.split())

    def remove_punc(text: str) -> str:
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def f1_score(prediction: str, ground_truth: str) -> float:
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = collections.Counter(prediction_tokens) & collections.Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def exact_match_score(prediction: str, ground_truth: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def official_v1_scores(examples: dict[str, list], predictions: dict[str, str]) -> dict[str, float]:
    exact = f1 = 0.0
    for example_id, answers in zip(examples["id"], examples["answers"]):
        exact += max(exact_match_score(predictions[example_id], gold) for gold in answers["text"])
        f1 += max(f1_score(predictions[example_id], gold) for gold in answers["text"])
    total = len(examples["id"])
    return {"exact_match": 100.0 * exact / total, "f1": 100.0 * f1 / total, "total": total}


# -- the recipe -----------------------------------------------------------------------------------------


def total_optimizer_steps(settings: Settings, train_size: int) -> int:
    steps_per_epoch = math.ceil(math.ceil(train_size / settings.batch_size) / settings.grad_accum)
    return settings.max_steps or math.ceil(settings.epochs * steps_per_epoch)


def training_arguments(settings: Settings, output_dir: Path, train_size: int) -> Any:
    """TrainingArguments with the spec's values; names that changed across transformers versions are picked here."""
    import torch
    from transformers import TrainingArguments

    accepted = inspect.signature(TrainingArguments.__init__).parameters
    use_cuda = settings.device != "cpu" and torch.cuda.is_available()
    precision = settings.precision
    if precision == "auto":
        precision = "bf16" if use_cuda and torch.cuda.is_bf16_supported() else "fp32"
    # warmup_ratio is gone in transformers 5; an explicit step count means the same in every version.
    warmup = settings.warmup_steps or math.ceil(settings.warmup_ratio * total_optimizer_steps(settings, train_size))
    arguments: dict[str, Any] = {
        "output_dir": str(output_dir),
        "learning_rate": settings.lr,
        "weight_decay": settings.weight_decay,
        "adam_beta1": settings.betas[0],
        "adam_beta2": settings.betas[1],
        "adam_epsilon": settings.eps,
        "lr_scheduler_type": SCHEDULES[settings.schedule],
        "warmup_steps": warmup,
        "num_train_epochs": settings.epochs,
        "max_steps": settings.max_steps or -1,
        "per_device_train_batch_size": settings.batch_size,
        "per_device_eval_batch_size": settings.eval_batch_size,
        "gradient_accumulation_steps": settings.grad_accum,
        "max_grad_norm": settings.max_grad_norm or 0.0,
        "seed": settings.seed,
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        "logging_steps": settings.log_every,
        "save_strategy": "no",
        "report_to": [],
        "disable_tqdm": True,
    }
    arguments["eval_strategy" if "eval_strategy" in accepted else "evaluation_strategy"] = "no"
    if settings.device == "cpu":
        arguments["use_cpu" if "use_cpu" in accepted else "no_cuda"] = True
    return TrainingArguments(**arguments)


def run(settings: Settings, output_dir: Path) -> dict[str, Any]:
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, DataCollatorWithPadding, Trainer, set_seed

    started = time.perf_counter()
    set_seed(settings.seed)
    tokenizer = AutoTokenizer.from_pretrained(settings.model_path)
    if tokenizer.padding_side != "right":
        raise SystemExit("reference_qa.py: only tokenizers that pad on the right (question first) are mapped.")
    model = AutoModelForQuestionAnswering.from_pretrained(settings.model_path)
    train_examples = read_squad(settings.train, settings.max_train_samples)
    eval_examples = read_squad(settings.evaluate, settings.max_eval_samples)
    train_features = prepare_train_features(train_examples, tokenizer, settings.max_length, settings.doc_stride)
    eval_inputs, eval_meta = prepare_validation_features(eval_examples, tokenizer, settings.max_length,
                                                         settings.doc_stride)
    trainer = Trainer(model=model, args=training_arguments(settings, output_dir, len(train_features)),
                      train_dataset=train_features, data_collator=DataCollatorWithPadding(tokenizer))
    train_started = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - train_started
    eval_started = time.perf_counter()
    start_logits, end_logits = trainer.predict(eval_inputs).predictions[:2]
    predictions = postprocess_qa_predictions(eval_examples, eval_meta, (start_logits, end_logits), settings.n_best,
                                             settings.max_answer_length)
    eval_seconds = time.perf_counter() - eval_started
    scores = official_v1_scores(eval_examples, predictions)
    return {
        **scores,
        "eval_file": str(settings.evaluate),
        "train_questions": len(train_examples["id"]),
        "train_windows": len(train_features),
        "eval_windows": len(eval_inputs),
        "train_log": [{"step": entry["step"], "loss": entry["loss"], "lr": entry["learning_rate"]}
                      for entry in trainer.state.log_history if "loss" in entry and "learning_rate" in entry],
        "optimizer_steps": trainer.state.global_step,
        "train_runtime_s": round(train_seconds, 1),
        "eval_runtime_s": round(eval_seconds, 1),
        "wall_s": round(time.perf_counter() - started, 1),
        "settings": {key: str(value) if isinstance(value, Path) else value for key, value in vars(settings).items()},
        "versions": _versions(),
        "predictions": predictions,
    }


def _versions() -> dict[str, str]:
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", type=Path, help="A homofit QA spec, e.g. configs/squad_v1.1.yaml.")
    parser.add_argument("overrides", nargs="*", help="Dotted overrides as for homofit train, e.g. train.seed=1.")
    parser.add_argument("--out", type=Path, required=True, help="Write the scores and predictions here (JSON).")
    parser.add_argument("--model", help="A model folder; default: the spec's model.name_or_path.")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="Overrides the spec's train.device.")
    args = parser.parse_args()
    overrides = list(args.overrides) + ([f"train.device={args.device}"] if args.device else [])
    settings = settings_from_spec(args.spec, overrides, args.model)
    with tempfile.TemporaryDirectory(prefix="reference-qa-") as scratch:
        result = run(settings, Path(scratch))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{result['eval_file']}: exact match {result['exact_match']:.2f}, F1 {result['f1']:.2f} "
          f"({result['total']} questions); {result['optimizer_steps']} steps, train {result['train_runtime_s']} s, "
          f"wall {result['wall_s']} s")


if __name__ == "__main__":
    main()
