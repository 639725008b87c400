"""The plain Hugging Face extractive-QA recipe, run on a homofit QA spec, for side-by-side benchmarks.

It follows transformers' `run_qa.py` example and its `utils_qa.py`: the tokenizer's overflowing windows
(`stride` = doc_stride) with offset mappings; training windows labelled with the answer's first and last
token, or the CLS token when the window does not hold the whole answer; AutoModelForQuestionAnswering,
Trainer + TrainingArguments; `postprocess_qa_predictions` (n-best start/end search, windows merged per
question, answer cut from the context by character offsets) and the official SQuAD v1.1 scorer.
It reads the same spec as `homofit train` (data files and their first max_train_samples / max_eval_samples
questions, windows, model, optimizer, schedule, batching, batch size, epochs, seed, precision) through
reference_common.py, which refuses the settings no reference reproduces, so the two runs differ only in the
training code.

    python scripts/reference_qa.py configs/squad_v1.1.yaml [key=value ...] --out reference.json

There is no model selection (a spec with data.dev is refused): the model after the last step scores data.test.
"""

from __future__ import annotations

import collections
import json
import re
import string
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parent))  # reference_common, however this file is loaded
import reference_common as common

TASK_TYPE = "qa"


@dataclass
class Settings:
    """Everything the recipe takes from the spec, as plain values."""

    train: Path
    test: Path
    max_length: int
    doc_stride: int
    n_best: int
    max_answer_length: int
    basics: common.Basics


def settings_from_spec(spec_path: Path, overrides: list[str], model_path: str | None = None) -> Settings:
    """Read a homofit spec with homofit's own loader, so defaults and overrides resolve identically."""
    from homofit.data.readers import detect_format

    spec = common.load_spec(spec_path, overrides, TASK_TYPE)
    common.require(spec.task.version != "v2", "task.version=v2: the QA reference is the SQuAD v1.1 recipe "
                                              "(no unanswerable questions).")
    common.require(spec.data.test is not None, "the QA reference needs data.test to score.")
    for name in ("train", "test"):
        path = getattr(spec.data, name)
        common.require(detect_format(path, "auto") == "json",
                       f"data.{name}: {path}: the QA reference reads SQuAD JSON files only.")
    return Settings(
        train=spec.data.train, test=spec.data.test, max_length=spec.data.max_length, doc_stride=spec.data.stride,
        n_best=spec.task.n_best, max_answer_length=spec.task.max_answer_length, basics=common.basics(spec, model_path),
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


def run(settings: Settings, output_dir: Path) -> dict[str, Any]:
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, DataCollatorWithPadding

    tokenizer = AutoTokenizer.from_pretrained(settings.basics.model_path)
    common.require(tokenizer.padding_side == "right",
                   f"model.name_or_path: {settings.basics.model_path}: its tokenizer pads on the left; the QA "
                   "reference maps only tokenizers that pad on the right (question first).")
    model = common.seeded_model(AutoModelForQuestionAnswering, settings.basics)
    train_examples = read_squad(settings.train, settings.basics.max_train_samples)
    eval_examples = read_squad(settings.test, settings.basics.max_eval_samples)
    train_features = prepare_train_features(train_examples, tokenizer, settings.max_length, settings.doc_stride)
    eval_inputs, eval_meta = prepare_validation_features(eval_examples, tokenizer, settings.max_length,
                                                         settings.doc_stride)
    trainer = common.build_trainer(settings.basics.trainer, output_dir, model, train_features,
                                   DataCollatorWithPadding(tokenizer))
    training = common.train(trainer)
    eval_started = time.perf_counter()
    start_logits, end_logits = trainer.predict(eval_inputs).predictions[:2]
    predictions = postprocess_qa_predictions(eval_examples, eval_meta, (start_logits, end_logits), settings.n_best,
                                             settings.max_answer_length)
    return {
        "test": official_v1_scores(eval_examples, predictions),
        "eval_runtime_s": round(time.perf_counter() - eval_started, 1),
        "train_questions": len(train_examples["id"]),
        "train_windows": len(train_features),
        "eval_windows": len(eval_inputs),
        **training,
        "predictions": predictions,
    }


def summary(result: dict[str, Any]) -> list[str]:
    scores = result["test"]
    line = (f"{result['settings']['test']}: exact match {scores['exact_match']:.2f}, F1 {scores['f1']:.2f} "
            f"({scores['total']} questions); {result['optimizer_steps']} steps, train {result['train_runtime_s']} s, "
            f"wall {result['wall_s']} s")
    return [line]


RECIPE = common.Recipe(script="reference_qa.py", task_type=TASK_TYPE, spec_example="configs/squad_v1.1.yaml",
                       perfect_score=100.0, load=settings_from_spec, run=run, summary=summary)

if __name__ == "__main__":
    common.main(RECIPE, __doc__)
