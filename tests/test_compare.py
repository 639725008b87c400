"""`homofit compare`: bootstrap intervals, paired tests, McNemar, homogenization (on hand-built predictions
with known answers), the metrics recomputed from outcomes equal to the tasks' reports, and the command end to
end on tiny runs for NER, classification and translation, and `train --seeds`."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from homofit.cli import app
from homofit.compare import (
    Model,
    bootstrap_values,
    check_same_examples,
    cohen_kappa,
    compare,
    confidence_interval,
    homogenization,
    mcnemar_exact,
    paired_bootstrap_p,
    resample_counts,
)
from homofit.errors import HomofitError
from homofit.outcomes import label_outcomes, qa_outcomes, relation_outcomes, tagging_outcomes

DATA = Path(__file__).parent / "data"


def classification_records(gold: list[str], predicted: list[str]) -> list[dict[str, Any]]:
    return [{"source": f"data.tsv:{index + 2}", "text": f"text {index}", "label": label, "gold_label": truth}
            for index, (truth, label) in enumerate(zip(gold, predicted))]


def model(name: str, gold: list[str], predicted: list[str]) -> Model:
    return Model(name, "classification", label_outcomes(classification_records(gold, predicted), ["a", "b"]), "h", name)


# -- statistics on hand-built cases -----------------------------------------------------------------------


def test_bootstrap_interval_covers_the_true_accuracy_at_the_nominal_rate() -> None:
    """A classifier right on each example with probability 0.7: its 95% interval holds 0.7 about 95% of times."""
    rng = np.random.default_rng(0)
    covered, trials = 0, 200
    for trial in range(trials):
        right = rng.random(200) < 0.7
        gold = ["a"] * 200
        outcomes = label_outcomes(classification_records(gold, ["a" if ok else "b" for ok in right]), ["a", "b"])
        low, high = confidence_interval(bootstrap_values(outcomes, "accuracy", resample_counts(200, 400, trial)))
        covered += low <= 0.7 <= high
    assert 0.90 <= covered / trials <= 0.99


def test_mcnemar_exact_p_value_by_hand() -> None:
    # 8 examples only the first gets right, 2 only the second, 5 both, 3 neither:
    # p = 2 * P(X <= 2), X ~ Binomial(10, 1/2) = 2 * (1 + 10 + 45) / 1024 = 0.109375
    first = np.array([True] * 8 + [False] * 2 + [True] * 5 + [False] * 3)
    second = np.array([False] * 8 + [True] * 2 + [True] * 5 + [False] * 3)
    result = mcnemar_exact(first, second)
    assert (result["only_first_right"], result["only_second_right"]) == (8, 2)
    assert result["p_value"] == pytest.approx(0.109375, abs=1e-12)
    assert mcnemar_exact(first, first)["p_value"] == 1.0


def test_homogenization_is_one_for_independent_failures_and_above_for_shared_ones() -> None:
    examples = np.arange(100)
    first, second = examples < 50, examples % 2 == 0  # each fails half; together exactly a quarter
    independent = homogenization(np.stack([first, second]))
    assert independent["systemic_failure_rate"] == 0.25 and independent["expected_if_independent"] == 0.25
    assert independent["homogenization"] == 1.0
    shared = homogenization(np.stack([first, first]))
    assert shared["homogenization"] == 2.0 and shared["systemic_failure_rate"] == 0.5
    assert homogenization(np.stack([examples < 0, first]))["homogenization"] is None  # one never fails


def test_cohen_kappa_by_hand() -> None:
    # observed agreement 0.7 (4 + 3); chance: 0.5 * 0.6 + 0.5 * 0.4 = 0.5; kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4
    first = ["a"] * 5 + ["b"] * 5
    second = ["a", "a", "a", "a", "b", "a", "a", "b", "b", "b"]
    assert cohen_kappa(first, second) == pytest.approx(0.4)


def test_paired_bootstrap_tells_a_real_difference_from_none() -> None:
    rng = np.random.default_rng(1)
    gold = ["a"] * 300
    better = ["a" if value < 0.9 else "b" for value in rng.random(300)]
    worse = ["a" if value < 0.7 else "b" for value in rng.random(300)]
    result = compare([model("better", gold, better), model("worse", gold, worse)], resamples=500, seed=3)
    difference = result["pairs"][0]["differences"]["accuracy"]
    assert difference["difference"] > 0.1 and difference["p_value"] < 0.01 and difference["ci95"][0] > 0
    same = compare([model("one", gold, better), model("two", gold, better)], resamples=500, seed=3)
    assert same["pairs"][0]["differences"]["accuracy"] == {"difference": 0.0, "ci95": [0.0, 0.0], "p_value": 1.0}
    assert same["homogenization"]["homogenization"] == pytest.approx(1 / np.mean([label != "a" for label in better]))
    counts = resample_counts(300, 500, 3)
    deltas = bootstrap_values(model("a", gold, better).outcomes, "accuracy", counts) - \
        bootstrap_values(model("b", gold, worse).outcomes, "accuracy", counts)
    assert paired_bootstrap_p(difference["difference"], deltas) == difference["p_value"]


def test_models_scored_on_different_examples_are_refused() -> None:
    first = model("first", ["a", "b"], ["a", "a"])
    shorter = model("second", ["a"], ["a"])
    with pytest.raises(HomofitError, match=r"scored on different examples \(1 vs 2"):
        check_same_examples([first, shorter])
    other_data = Model("third", "classification", first.outcomes, "another hash", "x")
    with pytest.raises(HomofitError, match="scored on different data"):
        check_same_examples([first, other_data])


# -- outcomes give back the tasks' own metrics ------------------------------------------------------------


def test_entity_f1_from_outcomes_equals_the_report() -> None:
    from homofit.metrics.entities import entity_report

    rng = random.Random(0)
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    gold = [[rng.choice(tags) for _ in range(rng.randint(1, 12))] for _ in range(300)]
    predicted = [[tag if rng.random() < 0.7 else rng.choice(tags) for tag in sentence] for sentence in gold]
    gold = [_repair(sentence) for sentence in gold]
    records = [{"source": f"f:{index}", "tokens": ["w"] * len(sentence), "tags": guess, "gold_tags": sentence}
               for index, (sentence, guess) in enumerate(zip(gold, predicted))]
    outcomes = tagging_outcomes(records)
    report = entity_report(gold, predicted)
    for metric in ("precision", "recall", "f1"):
        assert outcomes.value(metric) == pytest.approx(report[metric], abs=1e-12)


def _repair(tags: list[str]) -> list[str]:
    """Valid IOB2: an I- that continues nothing becomes a B-."""
    fixed = []
    for index, tag in enumerate(tags):
        if tag.startswith("I-") and (index == 0 or fixed[-1][2:] != tag[2:]):
            tag = "B-" + tag[2:]
        fixed.append(tag)
    return fixed


def test_classification_and_relation_metrics_from_outcomes_equal_the_reports() -> None:
    from homofit.metrics.classification import single_label_report
    from homofit.metrics.relation import relation_report

    rng = random.Random(2)
    labels = ["x", "y", "z", "w"]
    gold = [rng.choice(labels[:3]) for _ in range(400)]
    predicted = [label if rng.random() < 0.6 else rng.choice(labels) for label in gold]
    outcomes = label_outcomes(classification_records(gold, predicted), labels)
    report = single_label_report(gold, predicted, labels)
    for metric in ("accuracy", "macro_f1", "weighted_f1"):
        assert outcomes.value(metric) == pytest.approx(report[metric], abs=1e-12)

    relations = ["Cause-Effect(e1,e2)", "Cause-Effect(e2,e1)", "Member-Collection(e1,e2)",
                 "Member-Collection(e2,e1)", "Instrument-Agency(e2,e1)", "Other"]
    gold = [rng.choice(relations[:-2] + ["Other"]) for _ in range(500)]
    predicted = [label if rng.random() < 0.5 else rng.choice(relations) for label in gold]
    records = [{"source": f"f:{index}", "text": "t", "label": guess, "gold_label": truth}
               for index, (truth, guess) in enumerate(zip(gold, predicted))]
    outcomes = relation_outcomes(records, "Other")
    report = relation_report(gold, predicted, sorted(set(relations)), "Other")
    for metric in ("official_macro_f1", "micro_f1", "accuracy"):
        assert outcomes.value(metric) == pytest.approx(report[metric], abs=1e-12)


def test_qa_outcomes_are_question_means() -> None:
    records = [{"id": "q1", "question": "Who?", "answer": "Ada", "gold_answers": ["Ada"]},
               {"id": "q2", "question": "Where?", "answer": "in Paris", "gold_answers": ["Paris"]}]
    outcomes = qa_outcomes(records)
    # scored from the answers: "in Paris" against "Paris" has precision 1/2, recall 1, F1 2/3
    assert outcomes.value("exact_match") == 50.0 and outcomes.value("f1") == pytest.approx(100 * (1 + 2 / 3) / 2)
    assert outcomes.correct.tolist() == [True, False] and outcomes.ids == ["q1", "q2"]


# -- the command line on tiny runs ------------------------------------------------------------------------


def invoke(*args: Any) -> Any:
    return CliRunner().invoke(app, [str(arg) for arg in args])


def ok(result: Any) -> Any:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    return result


FAMILIES = {
    "ner": ({"type": "ner"}, {"train": str(DATA / "ner" / "train.conll"), "dev": str(DATA / "ner" / "dev.conll"),
                              "test": str(DATA / "ner" / "test.conll")}, "f1"),
    "classification": ({"type": "classification"}, {
        "train": str(DATA / "classification" / "sst2_train.tsv"), "dev": str(DATA / "classification" / "sst2_dev.tsv"),
        "test": str(DATA / "classification" / "sst2_train.tsv"), "header": True,
        "columns": {"label": 0, "text": 1}}, "accuracy"),
    "translation": ({"type": "translation", "generation": {"max_new_tokens": 6}}, {
        "train": str(DATA / "generation" / "multi30k" / "train.en"),
        "test": str(DATA / "generation" / "multi30k" / "val.en.gz"), "max_eval_samples": 12}, "sentence_chrf"),
}


def write_spec(folder: Path, model_path: Path, family: str) -> Path:
    task, data, _ = FAMILIES[family]
    spec = {"task": task, "data": {"max_length": 48, **data}, "model": {"name_or_path": str(model_path)},
            "optim": {"lr": 3.0e-3}, "train": {"max_steps": 3, "batch_size": 8, "device": "cpu", "precision": "fp32"},
            "output": {"dir": str(folder / "runs")}}
    path = folder / f"{family}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize("family", list(FAMILIES))
def test_compare_two_runs_and_a_run_before_fine_tuning(family: str, tmp_path: Path, tiny_bert: Path) -> None:
    spec = write_spec(tmp_path, tiny_bert, family)
    for seed in (1, 2):
        ok(invoke("train", spec, f"train.seed={seed}", "--run-dir", tmp_path / f"seed{seed}"))
    out = tmp_path / "compared"
    result = ok(invoke("compare", tmp_path / "seed1", tmp_path / "seed2", "--resamples", 200, "--out", out))
    assert "homogenization" in result.stdout
    document = json.loads((out / "compare.json").read_text(encoding="utf-8"))
    metric = FAMILIES[family][2]
    assert [entry["name"] for entry in document["models"]] == ["seed1", "seed2"]
    for entry, run in zip(document["models"], ("seed1", "seed2")):
        value, (low, high) = entry["scores"][metric]["value"], entry["scores"][metric]["ci95"]
        assert low <= value <= high
        if metric in json.loads((tmp_path / run / "reports" / "test.json").read_text(encoding="utf-8")):
            report = json.loads((tmp_path / run / "reports" / "test.json").read_text(encoding="utf-8"))
            assert value == pytest.approx(report[metric], abs=1e-9)  # the task's own number
    pair = document["pairs"][0]
    assert 0.0 < pair["differences"][metric]["p_value"] <= 1.0 and "mcnemar" in pair
    assert (out / "compare.txt").read_text(encoding="utf-8").startswith(f"{family}: 2 models on the same")
    assert {"compare.forest.png", "compare.errors.png"} <= {path.name for path in out.iterdir()}

    if family == "translation":  # corpus BLEU and chrF with sacrebleu's own paired bootstrap
        corpus = document["corpus_bleu_chrf"]
        report = json.loads((tmp_path / "seed2" / "reports" / "test.json").read_text(encoding="utf-8"))
        assert corpus["models"]["seed2"]["bleu"]["score"] == pytest.approx(report["bleu"])
        assert corpus["models"]["seed2"]["chrf"]["score"] == pytest.approx(report["chrf"])
        assert corpus["models"]["seed1"]["bleu"]["p_value_against_baseline"] is None
        assert 0.0 < corpus["models"]["seed2"]["chrf"]["p_value_against_baseline"] <= 1.0

    before = ok(invoke("compare", tmp_path / "seed1", "--before", "--resamples", 100))
    assert "seed1 (before)" in before.stdout


def test_compare_refuses_runs_on_different_data(tmp_path: Path, tiny_bert: Path) -> None:
    spec = write_spec(tmp_path, tiny_bert, "ner")
    ok(invoke("train", spec, "--run-dir", tmp_path / "a"))
    ok(invoke("train", spec, f"data.test={DATA / 'ner' / 'dev.conll'}", "--run-dir", tmp_path / "b"))
    result = invoke("compare", tmp_path / "a", tmp_path / "b")
    assert result.exit_code == 2 and "scored on different data" in " ".join(result.stderr.split())
    result = invoke("compare", tmp_path / "a")
    assert result.exit_code == 2 and "at least two models" in result.stderr


def test_compare_checkpoints_on_another_file(tmp_path: Path, tiny_bert: Path) -> None:
    spec = write_spec(tmp_path, tiny_bert, "ner")
    ok(invoke("train", spec, "--run-dir", tmp_path / "a"))
    result = ok(invoke("compare", tmp_path / "a" / "checkpoints" / "best", tmp_path / "a" / "checkpoints" / "last",
                       "--data", DATA / "ner" / "dev.conll", "--resamples", 100))
    assert "│ best " in result.stdout and "│ last " in result.stdout


def test_train_seeds_runs_each_seed_and_summarizes(tmp_path: Path, tiny_bert: Path) -> None:
    spec = write_spec(tmp_path, tiny_bert, "ner")
    ok(invoke("train", spec, "--seeds", "3,4", "--run-dir", tmp_path / "seeds"))
    assert {path.name for path in (tmp_path / "seeds").iterdir()} == {"seed-3", "seed-4", "summary"}
    assert yaml.safe_load((tmp_path / "seeds" / "seed-4" / "config.yaml").read_text())["train"]["seed"] == 4
    summary = json.loads((tmp_path / "seeds" / "summary" / "seeds.json").read_text(encoding="utf-8"))
    values = [json.loads((tmp_path / "seeds" / f"seed-{seed}" / "reports" / "test.json").read_text())["f1"]
              for seed in (3, 4)]
    assert summary["split"] == "test" and summary["scores"]["f1"]["values"] == values
    assert summary["scores"]["f1"]["mean"] == pytest.approx(sum(values) / 2)
    assert (tmp_path / "seeds" / "summary" / "compare.json").is_file()
    bad = invoke("train", spec, "--seeds", "1,x")
    assert bad.exit_code == 2 and "--seeds 1,x: give whole numbers" in bad.stderr


OTHER_FAMILIES = {
    "qa": ({"type": "qa"}, {"train": str(DATA / "qa" / "squad_train.json"),
                            "test": str(DATA / "qa" / "squad_eval.json")}),
    "relation": ({"type": "relation"}, {"train": str(DATA / "relation" / "semeval_train.txt"),
                                        "test": str(DATA / "relation" / "semeval_test.txt")}),
    "summarization": ({"type": "summarization", "generation": {"max_new_tokens": 4}}, {
        "train": str(DATA / "generation" / "scitldr" / "train.jsonl"),
        "test": str(DATA / "generation" / "scitldr" / "dev.jsonl"),
        "columns": {"document": "source", "summary": "target"}}),
    "dialogue": ({"type": "dialogue", "generation": {"max_new_tokens": 4}}, {
        "train": str(DATA / "generation" / "sgd" / "train"),
        "test": str(DATA / "generation" / "sgd" / "dev" / "dialogues_001.json"), "max_eval_samples": 10}),
}


@pytest.mark.parametrize("family", list(OTHER_FAMILIES))
def test_compare_works_for_the_other_families(family: str, tmp_path: Path, tiny_bert: Path) -> None:
    task, data = OTHER_FAMILIES[family]
    spec = {"task": task, "data": {"max_length": 128, **data}, "model": {"name_or_path": str(tiny_bert)},
            "train": {"max_steps": 2, "batch_size": 8, "device": "cpu", "precision": "fp32"},
            "output": {"dir": str(tmp_path / "runs")}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    for seed in (1, 2):
        ok(invoke("train", path, f"train.seed={seed}", "--run-dir", tmp_path / f"seed{seed}"))
    ok(invoke("compare", tmp_path / "seed1", tmp_path / "seed2", "--resamples", 100, "--out", tmp_path / "out"))
    ok(invoke("compare", tmp_path / "seed1", "--before", "--resamples", 100))
    document = json.loads((tmp_path / "out" / "compare.json").read_text(encoding="utf-8"))
    report = json.loads((tmp_path / "seed1" / "reports" / "test.json").read_text(encoding="utf-8"))
    shared = [metric for metric in document["metrics"] if metric in report]
    assert shared or family in {"summarization", "dialogue"}  # generation: sentence-level scores of their own
    for metric in shared:
        assert document["models"][0]["scores"][metric]["value"] == pytest.approx(report[metric], abs=1e-9)
