"""homofit.metrics.squad against hand-computed scores and the official SQuAD evaluation rules."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from homofit.metrics.squad import (
    ScoredQuestion,
    best_null_threshold,
    exact_match,
    format_squad_report,
    normalize_answer,
    question_scores,
    question_type,
    squad_report,
    token_f1,
)

REPO = Path(__file__).parent.parent.parent


@pytest.mark.parametrize(("text", "normalized"), [
    ("The Denver Broncos", "denver broncos"),
    ("  an   apple,  a pear!", "apple pear"),
    ("Theory of the case", "theory of case"),  # 'the' goes only as a whole word
    ("U.S.-based", "usbased"),
    ("Zürich", "zürich"),
    ("", ""),
])
def test_normalize_answer(text: str, normalized: str) -> None:
    assert normalize_answer(text) == normalized


def test_exact_match_after_normalization() -> None:
    assert exact_match("the Denver Broncos.", "Denver Broncos") == 1.0
    assert exact_match("Denver", "Denver Broncos") == 0.0


def test_f1_by_hand() -> None:
    # 'broncos won' vs 'denver broncos': 1 shared token, precision 1/2, recall 1/2.
    assert token_f1("Broncos won", "Denver Broncos", empty_matches_empty=False) == pytest.approx(0.5)
    # 'denver broncos won super bowl' vs 'denver broncos': 2 shared, precision 2/5, recall 1 -> 2*0.4/1.4.
    assert token_f1("Denver Broncos won Super Bowl", "the Denver Broncos", False) == pytest.approx(0.8 / 1.4)
    # A repeated token counts as often as both sides have it: x once and y once are shared, P = R = 2/3.
    assert token_f1("x x y", "x y y", False) == pytest.approx(2 / 3)
    assert token_f1("Carolina", "Denver", False) == 0.0


def test_empty_answers_follow_each_official_script() -> None:
    # v2.0: empty matches empty; v1.1: nothing shared scores 0.
    assert token_f1("", "", empty_matches_empty=True) == 1.0
    assert token_f1("the", "", empty_matches_empty=True) == 1.0  # 'the' normalizes to nothing
    assert token_f1("Denver", "", empty_matches_empty=True) == 0.0
    assert token_f1("", "", empty_matches_empty=False) == 0.0


def test_question_scores_take_the_best_gold_answer() -> None:
    item = ScoredQuestion("Who won?", ["Denver Broncos", "Broncos", "the Broncos"], "Broncos!")
    assert question_scores(item, "v1") == (1.0, 1.0)
    partial = ScoredQuestion("Who won?", ["Denver Broncos", "Denver Broncos of Colorado"], "Broncos of Colorado")
    # best F1 is against the second answer: 3 shared ('broncos', 'of', 'colorado'), P = 1, R = 3/4.
    assert question_scores(partial, "v1") == (0.0, pytest.approx(2 * 0.75 / 1.75))


def test_v1_report_by_hand() -> None:
    items = [
        ScoredQuestion("What team won?", ["Denver Broncos"], "Denver Broncos"),  # EM 1, F1 1
        ScoredQuestion("Who lost?", ["Carolina Panthers"], "the Panthers"),  # EM 0, F1 2*(1*0.5)/1.5 = 2/3
        ScoredQuestion("In what year?", ["2016"], "2015"),  # EM 0, F1 0
    ]
    report = squad_report(items, "v1")
    assert report["exact_match"] == pytest.approx(100 / 3)
    assert report["f1"] == pytest.approx(100 * (1 + 2 / 3) / 3)
    assert report["total"] == 3 and report["version"] == "v1"
    assert "HasAns_exact" not in report
    assert report["by_question_type"] == {
        "what": {"count": 1, "exact_match": 100.0, "f1": 100.0},
        "who": {"count": 1, "exact_match": 0.0, "f1": pytest.approx(200 / 3)},
        "other": {"count": 1, "exact_match": 0.0, "f1": 0.0},
    }
    headline = [key for key, value in report.items() if isinstance(value, float)]
    assert headline == ["exact_match", "f1"]


def test_v2_report_by_hand() -> None:
    items = [
        ScoredQuestion("Who won?", ["Denver Broncos"], "Denver Broncos"),  # has answer, right
        ScoredQuestion("Who lost?", ["Carolina Panthers"], ""),  # has answer, answered nothing: 0
        ScoredQuestion("Why blue?", [], ""),  # no answer, answered nothing: 1
        ScoredQuestion("How old?", [], "42 years"),  # no answer, answered something: 0
    ]
    report = squad_report(items, "v2")
    assert (report["exact_match"], report["f1"]) == (50.0, 50.0)
    assert (report["HasAns_exact"], report["HasAns_f1"], report["HasAns_total"]) == (50.0, 50.0, 2)
    assert (report["NoAns_exact"], report["NoAns_f1"], report["NoAns_total"]) == (50.0, 50.0, 2)
    assert "null_threshold_search" not in report  # the items carry no null scores


def test_best_null_threshold_by_hand() -> None:
    # Differences (null - best span) and what each question scores with its span vs with ''.
    items = [
        ScoredQuestion("q", ["Denver"], "Denver", best_span="Denver", null_score_diff=-3.0),  # span 1, null 0
        ScoredQuestion("q", [], "", best_span="Broncos", null_score_diff=1.0),  # span 0, null 1
        ScoredQuestion("q", ["Panthers"], "", best_span="Panthers", null_score_diff=2.0),  # span 1, null 0
        ScoredQuestion("q", [], "", best_span="x", null_score_diff=5.0),  # span 0, null 1
    ]
    # All '' scores 2; letting the -3 question answer: 3; then 1.0 one: 2; then 2.0 one: 3; then 5.0: 2.
    # The first time 3 is reached is at threshold -3.0 (the -3 question answers, the others do not).
    assert best_null_threshold(items) == {"best_f1": 75.0, "best_threshold": -3.0}
    report = squad_report(items, "v2")
    assert report["null_threshold_search"] == {"best_f1": 75.0, "best_threshold": -3.0}


@pytest.mark.parametrize(("question", "kind"), [
    ("What is it?", "what"), ("who won", "who"), ("  When?", "when"), ("Whose idea?", "whose"),
    ("How many?", "how"), ("In what year?", "other"), ("", "other"), ("Which one", "which"),
])
def test_question_type_is_the_first_word(question: str, kind: str) -> None:
    assert question_type(question) == kind


def test_format_report() -> None:
    items = [ScoredQuestion("Who won?", ["Denver"], "Denver"), ScoredQuestion("Why?", [], "")]
    text = format_squad_report(squad_report(items, "v2"))
    assert "exact match 100.00   F1 100.00" in text
    assert "HasAns: exact match 100.00   F1 100.00   (1 questions)" in text
    assert "     who       1  100.00  100.00" in text


def test_same_scores_as_the_official_v1_script_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference recipe carries the official v1.1 scorer verbatim; both must agree string by string."""
    spec = importlib.util.spec_from_file_location("reference_qa", REPO / "scripts" / "reference_qa.py")
    reference = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "reference_qa", reference)  # dataclasses look their module up there
    spec.loader.exec_module(reference)
    pairs = [("The Denver Broncos!", "Denver Broncos"), ("Broncos won", "the Denver Broncos"), ("a", "an"),
             ("Super Bowl 50", "Super Bowl L"), ("x x y", "x y y"), ("", "Denver"), ("Zürich,", "zürich")]
    for predicted, gold in pairs:
        assert exact_match(predicted, gold) == float(reference.exact_match_score(predicted, gold))
        expected_f1 = reference.f1_score(predicted, gold)
        assert token_f1(predicted, gold, empty_matches_empty=False) == pytest.approx(expected_f1)
