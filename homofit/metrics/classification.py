"""Per-class precision, recall and F1 (as sklearn's classification report), accuracy and confusion matrices.

Rows cover the labels that occur in the gold data or in the predictions, in the task's label order, as
sklearn does when it is not given a label list; a label in neither would only add a row of zeros.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from homofit.metrics import precision_recall_f1


def single_label_report(gold: Sequence[str], predicted: Sequence[str], label_order: Sequence[str]) -> dict[str, Any]:
    """One label per example. Headline keys: `accuracy`, `macro_f1`, `weighted_f1`.

    `confusion_matrix.matrix[i][j]` counts examples of gold label i predicted as label j.
    """
    labels = present_labels(label_order, [[label] for label in gold], [[label] for label in predicted])
    index = {label: position for position, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for gold_label, predicted_label in zip(gold, predicted, strict=True):
        matrix[index[gold_label]][index[predicted_label]] += 1
    per_class = {
        label: precision_recall_f1(matrix[row][row], sum(line[row] for line in matrix), sum(matrix[row]))
        for row, label in enumerate(labels)
    }
    correct = sum(matrix[row][row] for row in range(len(labels)))
    averages = average_scores(per_class)
    return _report(correct, len(gold), per_class, averages, {"labels": labels, "matrix": matrix})


def multi_label_report(gold: Sequence[set[str]], predicted: Sequence[set[str]],
                       label_order: Sequence[str]) -> dict[str, Any]:
    """Any number of labels per example. `accuracy` is exact-set accuracy (sklearn's subset accuracy);
    `macro_f1` and `weighted_f1` average the per-label F1 scores, `averages.micro` pools every decision.

    `confusion_matrix.per_class[label]` is that label's [[tn, fp], [fn, tp]] (sklearn's multilabel layout).
    """
    labels = present_labels(label_order, gold, predicted)
    per_class, binary = {}, {}
    for label in labels:
        true_positive = sum(label in gold_set and label in predicted_set
                            for gold_set, predicted_set in zip(gold, predicted, strict=True))
        predicted_count = sum(label in predicted_set for predicted_set in predicted)
        support = sum(label in gold_set for gold_set in gold)
        per_class[label] = precision_recall_f1(true_positive, predicted_count, support)
        false_positive, false_negative = predicted_count - true_positive, support - true_positive
        true_negative = len(gold) - true_positive - false_positive - false_negative
        binary[label] = [[true_negative, false_positive], [false_negative, true_positive]]
    micro = precision_recall_f1(sum(matrix[1][1] for matrix in binary.values()),
                                sum(matrix[0][1] + matrix[1][1] for matrix in binary.values()),
                                sum(matrix[1][0] + matrix[1][1] for matrix in binary.values()))
    averages = {"micro": micro, **average_scores(per_class)}
    exact = sum(set(gold_set) == set(predicted_set) for gold_set, predicted_set in zip(gold, predicted))
    return _report(exact, len(gold), per_class, averages, {"labels": labels, "per_class": binary})


def _report(correct: int, examples: int, per_class: dict[str, Any], averages: dict[str, Any],
            confusion: dict[str, Any]) -> dict[str, Any]:
    """A classification report: the headline scores first, then what they come from."""
    return {
        "accuracy": correct / examples if examples else 0.0,
        "macro_f1": averages["macro"]["f1-score"],
        "weighted_f1": averages["weighted"]["f1-score"],
        "per_class": per_class,
        "averages": averages,
        "confusion_matrix": confusion,
        "examples": examples,
    }


def present_labels(label_order: Sequence[str], gold: Sequence[Sequence[str]],
                   predicted: Sequence[Sequence[str]]) -> list[str]:
    """Labels seen in gold or predicted: those of `label_order` in its order, then any others sorted."""
    seen = {label for labels in [*gold, *predicted] for label in labels}
    ordered = [label for label in label_order if label in seen]
    return ordered + sorted(seen - set(ordered))


def average_scores(per_class: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Macro (plain mean over classes) and weighted (mean weighted by support) precision, recall and F1;
    their support is the sum of the classes' support, as in sklearn."""
    support = sum(scores["support"] for scores in per_class.values())
    averages: dict[str, dict[str, Any]] = {"macro": {}, "weighted": {}}
    for metric in ("precision", "recall", "f1-score"):
        values = [(scores[metric], scores["support"]) for scores in per_class.values()]
        averages["macro"][metric] = sum(value for value, _ in values) / len(values) if values else 0.0
        averages["weighted"][metric] = sum(value * weight for value, weight in values) / support if support else 0.0
    for scores in averages.values():
        scores["support"] = support
    return averages


def format_scores_table(per_class: dict[str, dict[str, Any]], averages: dict[str, dict[str, Any]],
                        accuracy: float | None = None, examples: int = 0) -> str:
    """sklearn's text layout of a classification report, with four decimals."""
    names = [*per_class, *(f"{name} avg" for name in averages), "accuracy"]
    width = max(len(name) for name in names)
    lines = [f"{'':>{width}}  precision    recall  f1-score   support", ""]
    lines += [_score_row(name, scores, width) for name, scores in per_class.items()]
    lines.append("")
    if accuracy is not None:
        lines.append(f"{'accuracy':>{width}}  {'':>9} {'':>9} {accuracy:>9.4f} {examples:>9d}")
    lines += [_score_row(f"{name} avg", scores, width) for name, scores in averages.items()]
    return "\n".join(lines)


def format_confusion_matrix(labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> str:
    """Rows are gold labels, columns predicted ones; long label names become numbered columns."""
    numbered = max((len(label) for label in labels), default=0) > 10
    headers = [str(number) for number in range(len(labels))] if numbered else list(labels)
    cell = max([len(header) for header in headers] + [len(str(count)) for row in matrix for count in row]) + 1
    names = [f"{number} {label}" for number, label in enumerate(labels)] if numbered else list(labels)
    corner = "gold \\ predicted"
    width = max(len(name) for name in [*names, corner])
    lines = [f"{corner:<{width}} " + "".join(f"{header:>{cell}}" for header in headers)]
    for name, row in zip(names, matrix):
        lines.append(f"{name:<{width}} " + "".join(f"{count:>{cell}d}" for count in row))
    return "\n".join(lines)


def format_binary_matrices(per_class: dict[str, list[list[int]]]) -> str:
    """Each label's true/false positive and negative counts, one line per label."""
    width = max(len(label) for label in [*per_class, "label"])
    lines = [f"{'label':<{width}}  {'tp':>7} {'fp':>7} {'fn':>7} {'tn':>7}"]
    for label, ((true_negative, false_positive), (false_negative, true_positive)) in per_class.items():
        lines.append(f"{label:<{width}}  {true_positive:>7d} {false_positive:>7d} "
                     f"{false_negative:>7d} {true_negative:>7d}")
    return "\n".join(lines)


def format_classification_report(report: dict[str, Any]) -> str:
    """The per-class table with accuracy and averages, then the confusion matrix."""
    lines = [format_scores_table(report["per_class"], report["averages"], report["accuracy"], report["examples"]), ""]
    matrix = report["confusion_matrix"]
    if "matrix" in matrix:
        lines += ["Confusion matrix (rows: gold label, columns: predicted label)",
                  format_confusion_matrix(matrix["labels"], matrix["matrix"])]
    else:
        lines += ["Accuracy is exact-set accuracy: every label of an example right, and no other.", "",
                  "Per-label decisions", format_binary_matrices(matrix["per_class"])]
    if report.get("truncated_inputs"):
        lines += ["", f"inputs cut to data.max_length: {report['truncated_inputs']} of {report['examples']}"]
    return "\n".join(lines) + "\n"


def save_confusion_matrix_png(labels: Sequence[str], matrix: Sequence[Sequence[int]], path: Path, title: str) -> bool:
    """Draw the matrix as a PNG when matplotlib is installed; returns whether a file was written."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        return False
    size = max(4.0, 0.5 * len(labels) + 2.0)
    figure, axes = pyplot.subplots(figsize=(size + 1.0, size))
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes)
    axes.set_xticks(range(len(labels)), labels=labels, rotation=90 if len(labels) > 4 else 0)
    axes.set_yticks(range(len(labels)), labels=labels)
    axes.set_xlabel("predicted label")
    axes.set_ylabel("gold label")
    axes.set_title(title)
    peak = max((count for row in matrix for count in row), default=0)
    for row, counts in enumerate(matrix):
        for column, count in enumerate(counts):
            axes.text(column, row, str(count), ha="center", va="center", fontsize=8,
                      color="white" if count > peak / 2 else "black")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return True


def _score_row(name: str, scores: dict[str, Any], width: int) -> str:
    return (f"{name:>{width}}  {scores['precision']:>9.4f} {scores['recall']:>9.4f} "
            f"{scores['f1-score']:>9.4f} {int(scores['support']):>9d}")
