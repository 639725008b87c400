"""The plain Hugging Face token-classification recipe, run on a homofit NER spec, for side-by-side benchmarks.

It follows transformers' `run_ner.py` example: AutoTokenizer with is_split_into_words and truncation,
the word's label on its first subword and -100 elsewhere, AutoModelForTokenClassification,
DataCollatorForTokenClassification, Trainer + TrainingArguments, seqeval at entity level.
It reads the same spec as `homofit train` (data files and their first max_train_samples / max_eval_samples
sentences, model, optimizer, schedule, batching, batch size, epochs, seed, precision) through reference_common.py,
which refuses the settings no reference reproduces, so the two runs differ only in the training code.

    python scripts/reference_ner.py configs/wnut17.yaml [key=value ...] --out reference.json

Dev is scored after every epoch and the checkpoint with the best dev entity F1 is loaded at the end
(`load_best_model_at_end`), as homofit scores test with its best-dev checkpoint. Words left without a
subword (cut off by truncation, or characters the tokenizer drops) count as predicted O, so both tools are
scored against every gold entity.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parent))  # reference_common, however this file is loaded
import reference_common as common

TASK_TYPE = "ner"
IGNORE_INDEX = -100


@dataclass
class Sentence:
    tokens: list[str]
    tags: list[str]


@dataclass
class Settings:
    """Everything the recipe takes from the spec, as plain values."""

    train: Path
    dev: Path | None
    test: Path | None
    max_length: int
    basics: common.Basics


def settings_from_spec(spec_path: Path, overrides: list[str], model_path: str | None = None) -> Settings:
    """Read a homofit spec with homofit's own loader, so defaults and overrides resolve identically."""
    from homofit.data.readers import detect_format

    spec = common.load_spec(spec_path, overrides, TASK_TYPE)
    for name in ("train", "dev", "test"):
        path = getattr(spec.data, name)
        common.require(path is None or detect_format(path, "auto") == "conll",
                       f"data.{name}: {path}: the NER reference reads CoNLL files only.")
    return Settings(
        train=spec.data.train, dev=spec.data.dev, test=spec.data.test, max_length=spec.data.max_length,
        basics=common.basics(spec, model_path),
    )


# -- data -----------------------------------------------------------------------------------------------


def read_conll(path: Path) -> list[Sentence]:
    """Token in the first column, IOB2 tag in the last; a blank line ends a sentence."""
    sentences, tokens, tags = [], [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = line.split()
        if not cells:
            if tokens:
                sentences.append(Sentence(tokens, tags))
                tokens, tags = [], []
            continue
        tokens.append(cells[0])
        tags.append(cells[-1])
    if tokens:
        sentences.append(Sentence(tokens, tags))
    return sentences


def label_list(sentences: list[Sentence]) -> list[str]:
    """O, then B-/I- of each entity type in alphabetical order: the order homofit gives its labels."""
    types = sorted({tag[2:] for sentence in sentences for tag in sentence.tags if tag != "O"})
    return ["O"] + [f"{prefix}-{entity_type}" for entity_type in types for prefix in ("B", "I")]


def tokenize_and_align(sentences: list[Sentence], tokenizer: Any, label_to_id: dict[str, int],
                       max_length: int) -> tuple[list[dict[str, list[int]]], list[list[int | None]]]:
    """run_ner.py's `tokenize_and_align_labels` with label_all_tokens=False; also each feature's word ids."""
    encoded = tokenizer([sentence.tokens for sentence in sentences], is_split_into_words=True,
                        truncation=True, max_length=max_length)
    features, word_ids = [], []
    for index, sentence in enumerate(sentences):
        labels, previous = [], None
        word_ids.append(encoded.word_ids(index))
        for word in word_ids[-1]:
            if word is None or word == previous:
                labels.append(IGNORE_INDEX)
            else:
                labels.append(label_to_id[sentence.tags[word]])
            previous = word
        feature = {key: encoded[key][index] for key in encoded}
        feature["labels"] = labels
        features.append(feature)
    return features, word_ids


# -- scores ---------------------------------------------------------------------------------------------


def predicted_tags(logits: Any, word_ids: list[list[int | None]], sentences: list[Sentence],
                   labels: list[str]) -> tuple[list[list[str]], int]:
    """Each word's tag from its first subword; words without a subword (cut by truncation, or characters the
    tokenizer drops) are O, so every gold entity is scored. Returns (tags, words without a subword)."""
    best = logits.argmax(axis=-1)
    predictions, lost = [], 0
    for row, sentence in enumerate(sentences):
        tags: list[str | None] = [None] * len(sentence.tags)
        for position, word in enumerate(word_ids[row]):
            if word is not None and tags[word] is None:
                tags[word] = labels[int(best[row][position])]
        lost += tags.count(None)
        predictions.append([tag or "O" for tag in tags])
    return predictions, lost


def repair_iob2(tags: list[str]) -> list[str]:
    """An I-X that does not continue an X entity starts one (homofit's reading of model output)."""
    repaired: list[str] = []
    for tag in tags:
        if tag.startswith("I-") and (not repaired or repaired[-1] == "O" or repaired[-1][2:] != tag[2:]):
            tag = "B-" + tag[2:]
        repaired.append(tag)
    return repaired


def entity_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
    """seqeval entity-level micro scores: default (conlleval) mode, strict IOB2, and strict after the I- repair."""
    from seqeval.metrics import f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2

    repaired = [repair_iob2(tags) for tags in predicted]
    strict = {"mode": "strict", "scheme": IOB2}
    return {
        "precision": float(precision_score(gold, predicted, zero_division=0)),
        "recall": float(recall_score(gold, predicted, zero_division=0)),
        "f1": float(f1_score(gold, predicted, zero_division=0)),
        "precision_strict": float(precision_score(gold, predicted, zero_division=0, **strict)),
        "recall_strict": float(recall_score(gold, predicted, zero_division=0, **strict)),
        "f1_strict": float(f1_score(gold, predicted, zero_division=0, **strict)),
        "f1_repaired_strict": float(f1_score(gold, repaired, zero_division=0, **strict)),
    }


# -- the recipe -----------------------------------------------------------------------------------------


def build_trainer(settings: Settings, output_dir: Path, evaluate: bool = True) -> tuple[Any, dict[str, Any]]:
    """The Trainer, ready to train, and the data it was built from (sentences, features, labels)."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification

    # the first max_*_samples sentences of each split, as homofit reads them
    train_sentences = read_conll(settings.train)[: settings.basics.max_train_samples]
    labels = label_list(train_sentences)
    label_to_id = {label: index for index, label in enumerate(labels)}
    tokenizer = AutoTokenizer.from_pretrained(settings.basics.model_path)
    splits = {"train": train_sentences}
    for name in ("dev", "test") if evaluate else ():
        common.require(getattr(settings, name) is not None, f"the NER reference needs data.{name}.")
        splits[name] = read_conll(getattr(settings, name))[: settings.basics.max_eval_samples]
    encoded = {name: tokenize_and_align(sentences, tokenizer, label_to_id, settings.max_length)
               for name, sentences in splits.items()}
    features = {name: split_features for name, (split_features, _) in encoded.items()}
    word_ids = {name: split_word_ids for name, (_, split_word_ids) in encoded.items()}
    model = common.seeded_model(AutoModelForTokenClassification, settings.basics, num_labels=len(labels),
                                id2label=dict(enumerate(labels)), label2id=label_to_id)

    def compute_metrics(prediction: Any) -> dict[str, float]:
        tags, _ = predicted_tags(prediction.predictions, word_ids["dev"], splits["dev"], labels)
        return entity_scores([sentence.tags for sentence in splits["dev"]], tags)

    trainer = common.build_trainer(
        settings.basics.trainer, output_dir, model, features["train"], DataCollatorForTokenClassification(tokenizer),
        eval_features=features["dev"] if evaluate else None, compute_metrics=compute_metrics if evaluate else None,
        select_on="f1" if evaluate else None)
    return trainer, {"splits": splits, "features": features, "word_ids": word_ids, "labels": labels}


def run(settings: Settings, output_dir: Path) -> dict[str, Any]:
    trainer, data = build_trainer(settings, output_dir)
    training = common.train(trainer)

    def score(name: str, logits: Any) -> dict[str, Any]:
        sentences = data["splits"][name]
        tags, lost = predicted_tags(logits, data["word_ids"][name], sentences, data["labels"])
        return {**entity_scores([sentence.tags for sentence in sentences], tags), "words_without_subword": lost,
                "sentences": len(sentences)}

    scores = common.score_splits(trainer, {name: data["features"][name] for name in ("dev", "test")}, score)
    return {**scores, **common.best_checkpoint(trainer), **training, "labels": data["labels"]}


def summary(result: dict[str, Any]) -> list[str]:
    lines = [f"{name}: entity F1 {result[name]['f1']:.4f} (seqeval default), {result[name]['f1_strict']:.4f} "
             f"(strict IOB2), {result[name]['f1_repaired_strict']:.4f} (strict after I- repair, as homofit)"
             for name in ("dev", "test")]
    best = f"best checkpoint: {result['best_checkpoint']} (dev F1 {result['best_dev']:.4f}); wall {result['wall_s']} s"
    return [*lines, best]


RECIPE = common.Recipe(script="reference_ner.py", task_type=TASK_TYPE, spec_example="configs/wnut17.yaml",
                       perfect_score=1.0, load=settings_from_spec, run=run, summary=summary)

if __name__ == "__main__":
    common.main(RECIPE, __doc__)
