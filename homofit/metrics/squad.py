"""SQuAD scores as the official evaluation scripts compute them (v1.1 and v2.0), with a report by question type.

Answers are compared after the official normalization: lowercase, punctuation removed, the articles
a/an/the removed, white space collapsed. Exact match and F1 take the best over all gold answers and
are reported on a 0-100 scale, as the official scripts print them.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import dataclass
from typing import Any

QUESTION_WORDS = ("what", "which", "who", "whom", "whose", "when", "where", "why", "how")
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


@dataclass(frozen=True)
class ScoredQuestion:
    """One question's gold answers (empty: unanswerable) and predicted text ('' means no answer)."""

    question: str
    gold: list[str]
    predicted: str
    # v2 only, for the threshold search: the best non-empty answer and its null score minus its span score.
    best_span: str | None = None
    null_score_diff: float | None = None


def normalize_answer(text: str) -> str:
    """The official normalization: lowercase, drop punctuation, drop articles, collapse white space."""
    text = "".join(character for character in text.lower() if character not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(predicted: str, gold: str) -> float:
    return float(normalize_answer(predicted) == normalize_answer(gold))


def token_f1(predicted: str, gold: str, empty_matches_empty: bool) -> float:
    """Bag-of-tokens F1 of the normalized strings.

    The v2.0 script scores an empty answer 1 against an empty answer and 0 against anything else
    (`empty_matches_empty`); the v1.1 script scores any pair without a shared token 0.
    """
    predicted_tokens = normalize_answer(predicted).split()
    gold_tokens = normalize_answer(gold).split()
    if empty_matches_empty and (not predicted_tokens or not gold_tokens):
        return float(predicted_tokens == gold_tokens)
    shared = sum((Counter(predicted_tokens) & Counter(gold_tokens)).values())
    if shared == 0:
        return 0.0
    precision = shared / len(predicted_tokens)
    recall = shared / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def question_scores(item: ScoredQuestion, version: str) -> tuple[float, float]:
    """(exact match, F1) of one question, each 0 or 1 / 0..1, the best over its gold answers.

    v2 scores an unanswerable question against the single gold answer '' (the official v2.0 rule).
    """
    gold = item.gold if item.gold or version == "v1" else [""]
    if not gold:
        return 0.0, 0.0
    empty_matches_empty = version == "v2"
    exact = max(exact_match(item.predicted, answer) for answer in gold)
    f1 = max(token_f1(item.predicted, answer, empty_matches_empty) for answer in gold)
    return exact, f1


def question_type(question: str) -> str:
    """The question's first word when it is a question word (what/who/when/...), else 'other'."""
    words = question.strip().split(maxsplit=1)
    first = words[0].lower().strip(string.punctuation) if words else ""
    return first if first in QUESTION_WORDS else "other"


def squad_report(items: list[ScoredQuestion], version: str) -> dict[str, Any]:
    """Headline `exact_match` and `f1` (0-100) at the top level; v2 adds HasAns_/NoAns_ scores as the
    official v2.0 script names them; details by question type and the best no-answer threshold below."""
    per_question = [question_scores(item, version) for item in items]
    report: dict[str, Any] = {**_mean_scores(per_question), "total": len(items), "version": version}
    if version == "v2":
        for name, wanted in (("HasAns", True), ("NoAns", False)):
            subset = [scores for item, scores in zip(items, per_question) if bool(item.gold) == wanted]
            if subset:
                means = _mean_scores(subset)
                report[f"{name}_exact"] = means["exact_match"]
                report[f"{name}_f1"] = means["f1"]
            report[f"{name}_total"] = len(subset)
        if items and all(item.null_score_diff is not None and item.best_span is not None for item in items):
            report["null_threshold_search"] = best_null_threshold(items)
    by_type: dict[str, list[tuple[float, float]]] = {}
    for item, scores in zip(items, per_question):
        by_type.setdefault(question_type(item.question), []).append(scores)
    order = [*QUESTION_WORDS, "other"]
    report["by_question_type"] = {
        name: {"count": len(by_type[name]), **_mean_scores(by_type[name])} for name in order if name in by_type
    }
    return report


def best_null_threshold(items: list[ScoredQuestion]) -> dict[str, float]:
    """The no-answer threshold that would have given the best F1 (as the official v2.0 `find_best_thresh`).

    A question answers '' when its null score minus its best span score is above the threshold. Start with
    every question answering '', then let them give their best span in order of increasing difference.
    """
    if_null = [0.0 if item.gold else 1.0 for item in items]
    if_span = [question_scores(ScoredQuestion(item.question, item.gold, item.best_span or ""), "v2")[1]
               for item in items]
    score = best_score = sum(if_null)
    best_threshold = min(item.null_score_diff for item in items) - 1.0
    for index in sorted(range(len(items)), key=lambda i: items[i].null_score_diff):
        score += if_span[index] - if_null[index]
        if score > best_score:
            best_score, best_threshold = score, items[index].null_score_diff
    return {"best_f1": 100.0 * best_score / len(items), "best_threshold": float(best_threshold)}


def format_squad_report(report: dict[str, Any]) -> str:
    lines = [f"SQuAD {report['version']} scores (official normalization), {report['total']} questions",
             f"exact match {report['exact_match']:.2f}   F1 {report['f1']:.2f}"]
    for name in ("HasAns", "NoAns"):
        if f"{name}_exact" in report:
            lines.append(f"{name}: exact match {report[f'{name}_exact']:.2f}   F1 {report[f'{name}_f1']:.2f}   "
                         f"({report[f'{name}_total']} questions)")
    search = report.get("null_threshold_search")
    if search:
        lines.append(f"best no-answer threshold {search['best_threshold']:.3f} would give F1 {search['best_f1']:.2f}")
    lines += ["", "By question type (first word)", f"{'type':>8}  {'count':>6}  {'EM':>6}  {'F1':>6}"]
    for name, scores in report["by_question_type"].items():
        lines.append(f"{name:>8}  {scores['count']:>6d}  {scores['exact_match']:>6.2f}  {scores['f1']:>6.2f}")
    return "\n".join(lines) + "\n"


def _mean_scores(per_question: list[tuple[float, float]]) -> dict[str, float]:
    count = max(1, len(per_question))
    return {"exact_match": 100.0 * sum(exact for exact, _ in per_question) / count,
            "f1": 100.0 * sum(f1 for _, f1 in per_question) / count}
