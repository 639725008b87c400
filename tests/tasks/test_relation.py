"""homofit.tasks.relation: the three input formats, spans and their errors, entity markers in the tokens,
windows around the entities, the two heads and their checkpoints, and a whole run through the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy
import pytest
import torch
import yaml
from test_cli import invoke, ok

from homofit.config import DataConfig, ModelConfig, load_config
from homofit.errors import HomofitError
from homofit.tasks.relation import (
    EntitySpan,
    RelationConfig,
    RelationExample,
    RelationPrediction,
    RelationTask,
    _window_around,
)

DATA = Path(__file__).parent.parent / "data" / "relation"
REPO = Path(__file__).parent.parent.parent
SHARED = REPO.parent / "shared" / "data"
CLS, SEP = 2, 3  # ids of [CLS] and [SEP] in tests/data/vocab.txt
THE, PARTY, IS, GREAT = 109, 158, 113, 190  # "the party is great" in the tiny vocab
E1, E1_END, E2, E2_END = 343, 344, 345, 346  # the markers, added after the 343 tokens of the vocab


def relation_task(labels: list[str] | None = None, **config: Any) -> RelationTask:
    return RelationTask(RelationConfig(**config), {"labels": labels} if labels else {})


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def read_error(path: Path, task: RelationTask | None = None) -> str:
    with pytest.raises(HomofitError) as error:
        (task or relation_task()).read(path, DataConfig())
    return str(error.value)


def entity_texts(example: RelationExample) -> tuple[str, str]:
    return (example.text[example.head.start : example.head.end], example.text[example.tail.start : example.tail.end])


@pytest.fixture
def marker_tokenizer(tiny_bert: Path) -> Any:
    """A fresh tokenizer: the task adds its markers to it (the session's shared one stays as it is)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_bert)


# -- reading ----------------------------------------------------------------------------------------------


def test_read_semeval_release_format() -> None:
    examples = relation_task().read(DATA / "semeval_train.txt", DataConfig())
    assert len(examples) == 32
    first = examples[0]
    assert first.text == ("The system as described above has its greatest application in an arrayed configuration "
                          "of antenna elements.")
    assert entity_texts(first) == ("configuration", "elements")
    assert (first.label, first.id, first.source) == ("Component-Whole(e2,e1)", "1", f"{DATA / 'semeval_train.txt'}:1")
    assert examples[1].label == "Other"
    assert examples[-1].id == "32"


def test_read_semeval_test_release_without_labels(tmp_path: Path) -> None:
    path = write(tmp_path / "TEST_FILE.TXT", '8001\t"The most common <e1>audits</e1> were about <e2>waste</e2>."\n'
                                             '8002\t"The <e1>company</e1> fabricates plastic <e2>chairs</e2>."\n')
    examples = relation_task().read_predict_input(str(path), DataConfig())
    assert [(example.id, example.label, entity_texts(example)) for example in examples] == [
        ("8001", None, ("audits", "waste")), ("8002", None, ("company", "chairs"))]
    assert read_error(path) == f"{path}:1: no relation label."


def test_read_jsonl_spans_markup_and_types(tmp_path: Path) -> None:
    lines = [
        ('{"text": "Ada Lovelace was born in London.", "head": {"start": 0, "end": 12, "type": "PER", '
         '"text": "Ada Lovelace"}, "tail": [25, 31], "tail_type": "LOC", "label": "born_in"}'),
        '{"text": "The <e1>cup</e1> holds <e2>tea</e2>.", "label": "Content-Container(e2,e1)", "id": 7}',
        '{"text": "  padded   words ", "head": [0, 9], "tail": [9, 17], "label": "x"}',
    ]
    path = write(tmp_path / "a.jsonl", "".join(line + "\n" for line in lines))
    examples = relation_task().read(path, DataConfig())
    assert [(entity_texts(example), example.label) for example in examples] == [
        (("Ada Lovelace", "London"), "born_in"), (("cup", "tea"), "Content-Container(e2,e1)"),
        (("padded", "words"), "x")]
    assert examples[1].text == "The cup holds tea."
    assert examples[1].id == "7"
    assert examples[2].head == EntitySpan(2, 8)  # white space around a span is left out
    first_line = write(tmp_path / "typed.jsonl", lines[0] + "\n")
    typed = relation_task(markers="typed").read(first_line, DataConfig())
    assert (typed[0].head.type, typed[0].tail.type) == ("PER", "LOC")


def test_read_tsv_with_marked_up_text(tmp_path: Path) -> None:
    path = write(tmp_path / "a.tsv", "sentence\trelation\nThe <e1>cup</e1> holds <e2>tea</e2>.\tin\n")
    examples = relation_task().read(path, DataConfig(columns={"text": "sentence", "label": "relation"}))
    assert [(entity_texts(example), example.label) for example in examples] == [(("cup", "tea"), "in")]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ('{"text": "abc def", "head": [0, 3], "tail": [4, 9], "label": "r"}',
         "the tail span [4, 9) is not inside the text (7 characters; offsets count characters, end exclusive)."),
        ('{"text": "abc def", "head": {"start": 0, "end": 2, "text": "abc"}, "tail": [4, 7], "label": "r"}',
         ("the head span [0, 2) reads 'ab' in the text, but the record says 'abc'; "
          "check the offsets (end is exclusive).")),
        ('{"text": "abc def", "head": [0, 5], "tail": [4, 7], "label": "r"}',
         "the head [0, 5) and the tail [4, 7) overlap; markers can enclose one entity inside another, not cross."),
        ('{"text": "abc def", "head": [0, 3], "tail": [0, 3], "label": "r"}',
         "the head [0, 3) and the tail [0, 3) overlap; markers can enclose one entity inside another, not cross."),
        ('{"text": "abc def", "head": "abc", "tail": [4, 7], "label": "r"}',
         ("data.columns.head must be [start, end] or {\"start\": .., \"end\": ..} (character offsets, end exclusive), "
          "got 'abc'.")),
        ('{"text": "abc def", "head": [3, 4], "tail": [4, 7], "label": "r"}',
         "the head is empty; mark at least one character."),
        ('{"text": "<e1>abc</e1> def", "label": "r"}',
         "expected <e1>..</e1> around the head and <e2>..</e2> around the tail; missing: e2."),
        ('{"text": "<e1>abc <e2>def</e2>", "label": "r"}',
         "expected <e1>..</e1> around the head and <e2>..</e2> around the tail; unclosed: e1."),
        ('{"text": "<e1>a</e1> <e1>b</e1> <e2>c</e2>", "label": "r"}', "<e1> opens twice; mark each entity once."),
        ('{"text": "a</e2> <e1>b</e1>", "label": "r"}', "</e2> closes an entity that was not opened."),
        ('{"text": "<e1>a</e1> <e2>b</e2>"}', "no 'label' field; set data.columns.label to the field that holds it."),
    ],
)
def test_span_errors_name_file_and_line(tmp_path: Path, record: str, message: str) -> None:
    path = write(tmp_path / "a.jsonl", "\n" + record + "\n")
    assert read_error(path) == f"{path}:2: {message}"


def test_nested_entities_are_allowed(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl",
                 '{"text": "New York University", "head": [0, 19], "tail": [0, 8], "label": "r"}\n')
    assert entity_texts(relation_task().read(path, DataConfig())[0]) == ("New York University", "New York")


def test_typed_markers_need_types(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", '{"text": "<e1>a</e1> <e2>b</e2>", "label": "r"}\n')
    assert read_error(path, relation_task(markers="typed")) == (
        f"{path}:1: no entity type for the head; task.markers: typed reads it from the span's 'type' or the "
        "head_type field (or use markers: untyped).")


def test_other_formats_and_columns_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "token\tO\n")
    assert read_error(path).startswith(f"{path}: relation extraction reads JSONL (character spans or <e1>/<e2> markup)")
    with pytest.raises(HomofitError, match="data.columns.sentence: not a relation column; use text, head, tail"):
        relation_task().read(DATA / "semeval_train.txt", DataConfig(columns={"sentence": "s"}))


def test_read_predict_input_raw_marked_up_lines() -> None:
    with pytest.raises(HomofitError, match="line 3: expected <e1>..</e1> around the head"):
        relation_task().read_predict_input("The <e1>cup</e1> holds <e2>tea</e2>.\n\nno markup", DataConfig())
    examples = relation_task().read_predict_input("The <e1>cup</e1> holds <e2>tea</e2>.", DataConfig())
    assert [(example.source, example.label, entity_texts(example)) for example in examples] == [
        ("line 1", None, ("cup", "tea"))]


# -- labels -----------------------------------------------------------------------------------------------


def test_labels_and_entity_types_in_a_stable_order(marker_tokenizer: Any) -> None:
    def example(label: str, types: tuple[str, str] = ("PER", "ORG")) -> RelationExample:
        return RelationExample("ab cd", EntitySpan(0, 2, types[0]), EntitySpan(3, 5, types[1]), label, "x")

    task = relation_task(markers="typed")
    assert task.initialize([example("b"), example("Other", ("LOC", "PER")), example("a")], marker_tokenizer, None) == []
    assert task.labels == ["Other", "a", "b"]
    assert task.entity_types == ["LOC", "ORG", "PER"]
    assert task.marker_tokens()[:4] == ["[E1:LOC]", "[/E1:LOC]", "[E2:LOC]", "[/E2:LOC]"]
    assert task.state() == {"labels": ["Other", "a", "b"], "entity_types": ["LOC", "ORG", "PER"]}
    checkpoint_state = task.state() | {"labels": ["b", "a"]}
    assert task.initialize([example("c", ("PER", "GPE")), example("a")], marker_tokenizer, checkpoint_state) == ["c"]
    assert task.labels == ["b", "a", "c"]  # a checkpoint's labels first, in its order
    assert task.entity_types == ["LOC", "ORG", "PER", "GPE"]


def test_one_label_is_not_enough(marker_tokenizer: Any) -> None:
    example = RelationExample("ab cd", EntitySpan(0, 2), EntitySpan(3, 5), "r", "x")
    with pytest.raises(HomofitError, match=r"data.train: the training data has only the label\(s\) \['r'\]"):
        relation_task().initialize([example], marker_tokenizer, None)


# -- markers in the tokens --------------------------------------------------------------------------------


def encoded(task: RelationTask, tokenizer: Any, head: tuple[int, int], tail: tuple[int, int],
            text: str = "the party is great", max_length: int = 32, label: str | None = None) -> list[dict]:
    task.labels = task.labels or ["Other", "r"]
    task.add_markers(tokenizer)
    example = RelationExample(text, EntitySpan(*head), EntitySpan(*tail), label, "x")
    return task.encode([example], tokenizer, DataConfig(max_length=max_length))


def test_markers_are_added_to_the_tokenizer(marker_tokenizer: Any) -> None:
    task = relation_task()
    task.add_markers(marker_tokenizer)
    assert marker_tokenizer.convert_tokens_to_ids(["[E1]", "[/E1]", "[E2]", "[/E2]"]) == [E1, E1_END, E2, E2_END]
    assert len(marker_tokenizer) == 347
    task.add_markers(marker_tokenizer)  # a checkpoint's tokenizer has them already
    assert len(marker_tokenizer) == 347


@pytest.mark.parametrize(
    ("head", "tail", "input_ids", "starts"),
    [
        ((4, 9), (13, 18), [CLS, THE, E1, PARTY, E1_END, IS, E2, GREAT, E2_END, SEP], (2, 6)),
        ((13, 18), (4, 9), [CLS, THE, E2, PARTY, E2_END, IS, E1, GREAT, E1_END, SEP], (6, 2)),  # tail first
        ((0, 9), (4, 9), [CLS, E1, THE, E2, PARTY, E2_END, E1_END, IS, GREAT, SEP], (1, 3)),  # tail inside head
        ((0, 3), (4, 9), [CLS, E1, THE, E1_END, E2, PARTY, E2_END, IS, GREAT, SEP], (1, 4)),  # side by side
    ],
)
def test_markers_go_around_the_entity_tokens(marker_tokenizer: Any, head: tuple[int, int], tail: tuple[int, int],
                                             input_ids: list[int], starts: tuple[int, int]) -> None:
    [feature] = encoded(relation_task(), marker_tokenizer, head, tail, label="r")
    assert feature["input_ids"] == input_ids
    assert (feature["head_start"], feature["tail_start"]) == starts
    assert (feature["labels"], feature["widened_spans"], feature["trimmed"]) == (1, 0, False)


def test_a_span_inside_a_token_is_widened_and_counted(marker_tokenizer: Any) -> None:
    [feature] = encoded(relation_task(), marker_tokenizer, (5, 8), (13, 18))  # "art" of "party"
    assert feature["input_ids"][:5] == [CLS, THE, E1, PARTY, E1_END]
    assert feature["widened_spans"] == 1


def test_typed_markers(marker_tokenizer: Any) -> None:
    task = relation_task(markers="typed")
    task.entity_types = ["LOC", "PER"]
    task.labels = ["Other", "r"]
    task.add_markers(marker_tokenizer)
    example = RelationExample("the party is great", EntitySpan(4, 9, "PER"), EntitySpan(13, 18, "LOC"), None, "x")
    [feature] = task.encode([example], marker_tokenizer, DataConfig())
    tokens = marker_tokenizer.convert_ids_to_tokens(feature["input_ids"])
    assert tokens == ["[CLS]", "the", "[E1:PER]", "party", "[/E1:PER]", "is", "[E2:LOC]", "great", "[/E2:LOC]", "[SEP]"]
    unknown = RelationExample("the party is great", EntitySpan(4, 9, "ORG"), EntitySpan(13, 18, "LOC"), None, "f:3")
    with pytest.raises(HomofitError, match="f:3: the head's entity type 'ORG' is not in the training data, so it has "
                                           "no marker; known types: LOC, PER."):
        task.encode([unknown], marker_tokenizer, DataConfig())


@pytest.mark.parametrize(
    ("start_of", "end_of", "length", "budget", "window"),
    [
        ({"head": 1, "tail": 4}, {"head": 2, "tail": 5}, 6, 8, (0, 6)),      # all fits
        ({"head": 5, "tail": 8}, {"head": 6, "tail": 9}, 20, 8, (4, 12)),    # context split around the entities
        ({"head": 15, "tail": 1}, {"head": 17, "tail": 3}, 20, 8, None),     # entities too far apart
        ({"head": 15, "tail": 13}, {"head": 17, "tail": 14}, 20, 8, (12, 20)),  # no context past the end
        ({"head": 0, "tail": 2}, {"head": 1, "tail": 3}, 20, 8, (0, 8)),     # none before the start
    ],
)
def test_window_around_the_entities(start_of: dict, end_of: dict, length: int, budget: int, window: Any) -> None:
    assert _window_around(start_of, end_of, length, budget) == window


def test_long_inputs_are_cut_around_the_entities_and_far_pairs_are_reported(marker_tokenizer: Any) -> None:
    text = "the party is great " * 6 + "the party is great"  # 28 tokens
    task = relation_task()
    [feature] = encoded(task, marker_tokenizer, (4 * 19 + 4, 4 * 19 + 9), (4 * 19 + 13, 4 * 19 + 18), text,
                        max_length=12)
    # 10 tokens between [CLS] and [SEP]: the 7 from [E1] to [/E2], 1 of context before them, 2 after
    assert feature["input_ids"] == [CLS, THE, E1, PARTY, E1_END, IS, E2, GREAT, E2_END, THE, PARTY, SEP]
    assert feature["trimmed"] is True
    assert (feature["head_start"], feature["tail_start"]) == (2, 6)
    far = encoded(task, marker_tokenizer, (4, 9), (6 * 19 + 13, 6 * 19 + 18), text, max_length=12)
    assert far == []
    examples = [RelationExample(text, EntitySpan(4, 9), EntitySpan(127, 132), "r", "x")]
    [prediction] = task.decode(examples, far, [])
    assert (prediction.label, prediction.unfit) == ("Other", True)
    report = task.score(examples, [prediction])
    assert (report["unfit_examples"], report["official_macro_f1"]) == (1, 0.0)
    assert task.prediction_records(examples, [prediction])[0]["unfit"] is True


# -- models and checkpoints -------------------------------------------------------------------------------


def batch_for(task: RelationTask, tokenizer: Any) -> dict[str, torch.Tensor]:
    examples = [RelationExample("the party is great", EntitySpan(4, 9), EntitySpan(13, 18), "r", "x"),
                RelationExample("trump said the party", EntitySpan(0, 5), EntitySpan(15, 20), "Other", "y")]
    return task.collate(task.encode(examples, tokenizer, DataConfig()), tokenizer)


def test_entity_start_head_saves_and_loads(marker_tokenizer: Any, tiny_bert: Path, tmp_path: Path) -> None:
    from transformers import AutoModel

    from homofit.entity_start import EntityStartClassifier

    task = relation_task(["Other", "r"])
    task.add_markers(marker_tokenizer)
    model = task.build_model(str(tiny_bert), ModelConfig(), marker_tokenizer, from_checkpoint=False).eval()
    assert isinstance(model, EntityStartClassifier)
    assert model.get_input_embeddings().num_embeddings == 347
    assert model.classifier.weight.shape == (2, 64)  # two labels from 2 x 32 hidden
    batch = batch_for(task, marker_tokenizer)
    assert batch["head_start"].tolist() == [2, 1] and batch["tail_start"].tolist() == [6, 6]
    total, units = task.loss(model, batch)
    assert total.ndim == 0 and torch.isfinite(total) and int(units) == 2  # summed over the 2 examples
    model.save_pretrained(tmp_path)
    assert {"config.json", "model.safetensors", "entity_start_head.safetensors"} <= {
        path.name for path in tmp_path.iterdir()}
    again = task.build_model(str(tmp_path), ModelConfig(), marker_tokenizer, from_checkpoint=True).eval()
    with torch.no_grad():
        inputs = task.head.inputs(batch)
        torch.testing.assert_close(again(**inputs).logits, model(**inputs).logits)
    encoder = AutoModel.from_pretrained(tmp_path)  # the encoder folder is a plain transformers model
    assert encoder.get_input_embeddings().num_embeddings == 347
    assert encoder.config.id2label == {0: "Other", 1: "r"}


def test_pooled_head_is_a_plain_transformers_classifier(marker_tokenizer: Any, tiny_bert: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    task = relation_task(["Other", "r"], head="pooled")
    task.add_markers(marker_tokenizer)
    model = task.build_model(str(tiny_bert), ModelConfig(), marker_tokenizer, from_checkpoint=False).eval()
    batch = batch_for(task, marker_tokenizer)
    assert set(task.head.inputs(batch)) == {"input_ids", "attention_mask"}
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(**task.head.inputs(batch)).logits,
                                   model(**task.head.inputs(batch)).logits)


def test_decode_score_and_records() -> None:
    task = relation_task(["Content-Container(e1,e2)", "Content-Container(e2,e1)", "Other"])
    examples = [RelationExample("The cup holds tea.", EntitySpan(4, 7), EntitySpan(14, 17), "Content-Container(e2,e1)",
                                "a:1", "1"),
                RelationExample("A cat sat.", EntitySpan(2, 5), EntitySpan(6, 9), "Other", "a:5", "2")]
    features = [{"example_index": 1, "widened_spans": 0, "trimmed": False},
                {"example_index": 0, "widened_spans": 1, "trimmed": True}]
    outputs = [numpy.array([0.1, 0.1, 0.8]), numpy.array([0.7, 0.2, 0.1])]
    predictions = task.decode(examples, features, outputs)
    assert [prediction.label for prediction in predictions] == ["Content-Container(e1,e2)", "Other"]
    report = task.score(examples, predictions)
    # the one relation was found in the wrong direction: official P and R are 0
    assert (report["official_macro_f1"], report["micro_f1"], report["accuracy"]) == (0.0, 0.0, 0.5)
    assert report["official"]["per_class"]["Content-Container"]["wrong_direction"] == 1
    assert (report["widened_spans"], report["trimmed_inputs"], report["unfit_examples"]) == (1, 1, 0)
    record = task.prediction_records(examples, predictions)[0]
    assert record == {"source": "a:1", "id": "1", "text": "The cup holds tea.",
                      "head": {"start": 4, "end": 7, "text": "cup"},
                      "tail": {"start": 14, "end": 17, "text": "tea"}, "label": "Content-Container(e1,e2)",
                      "probabilities": {"Content-Container(e1,e2)": 0.7, "Content-Container(e2,e1)": 0.2, "Other": 0.1},
                      "gold_label": "Content-Container(e2,e1)"}
    assert isinstance(predictions[0], RelationPrediction)


# -- the whole recipe, through the command line -----------------------------------------------------------


@pytest.fixture(scope="module")
def semeval_run(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> Path:
    """32 SemEval sentences, batch 16: 2 steps an epoch, 2 epochs, on the tiny random BERT."""
    folder = tmp_path_factory.mktemp("semeval-run")
    spec = {
        "task": {"type": "relation"},
        "data": {"train": str(DATA / "semeval_train.txt"), "dev": str(DATA / "semeval_test.txt"),
                 "test": str(DATA / "semeval_test.txt"), "max_length": 128},
        "model": {"name_or_path": str(tiny_bert)},
        "optim": {"lr": 1.0e-3},
        "train": {"epochs": 2, "batch_size": 16, "device": "cpu", "precision": "fp32", "seed": 5},
        "output": {"dir": str(folder / "runs")},
    }
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    ok(invoke("train", folder / "spec.yaml", "--run-dir", folder / "run"))
    return folder / "run"


def test_run_reports_the_official_score(semeval_run: Path) -> None:
    test = json.loads((semeval_run / "reports" / "test.json").read_text())
    assert [key for key, value in test.items() if isinstance(value, float)] == ["loss", "official_macro_f1", "micro_f1",
                                                                                 "accuracy"]
    assert test["examples"] == 16 and test["unfit_examples"] == 0
    records = [json.loads(line) for line in (semeval_run / "predictions" / "test.jsonl").read_text().splitlines()]
    assert test["accuracy"] == pytest.approx(sum(record["label"] == record["gold_label"] for record in records) / 16)
    assert records[0]["id"] == "8001" and records[0]["head"]["text"] == "audits"
    assert "Official score (SemEval-2010 Task 8 scorer" in (semeval_run / "reports" / "test.txt").read_text()


def test_checkpoint_keeps_the_markers(semeval_run: Path) -> None:
    from transformers import AutoModel, AutoTokenizer

    best = semeval_run / "checkpoints" / "best"
    tokenizer = AutoTokenizer.from_pretrained(best)
    assert tokenizer.convert_tokens_to_ids(["[E1]", "[/E1]", "[E2]", "[/E2]"]) == [E1, E1_END, E2, E2_END]
    assert AutoModel.from_pretrained(best).get_input_embeddings().num_embeddings == 347
    assert (best / "entity_start_head.safetensors").is_file()


def test_predict_jsonl_with_spans_and_eval(semeval_run: Path, tmp_path: Path) -> None:
    source = write(tmp_path / "in.jsonl",
                   '{"text": "The cup holds tea.", "head": {"start": 4, "end": 7}, "tail": [14, 17]}\n')
    result = ok(invoke("predict", "--checkpoint", semeval_run / "checkpoints" / "best", source))
    [record] = [json.loads(line) for line in result.stdout.splitlines()]
    assert (record["head"]["text"], record["tail"]["text"]) == ("cup", "tea")
    assert sum(record["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert record["label"] == max(record["probabilities"], key=record["probabilities"].get)
    ok(invoke("eval", "--checkpoint", semeval_run / "checkpoints" / "best", "--split", "test",
              "--out", tmp_path / "eval"))
    again = json.loads((tmp_path / "eval" / "test.json").read_text())
    assert again["official_macro_f1"] == json.loads(
        (semeval_run / "reports" / "test.json").read_text())["official_macro_f1"]


def test_init_prints_a_valid_starter_spec(tmp_path: Path) -> None:
    result = ok(invoke("init", "relation"))
    (tmp_path / "spec.yaml").write_text(result.stdout, encoding="utf-8")
    assert load_config(tmp_path / "spec.yaml").task.head == "entity_start"


def test_shipped_semeval_spec_is_valid() -> None:
    spec = load_config(REPO / "configs" / "semeval2010_task8.yaml")
    assert (spec.task.type, spec.task.negative_label) == ("relation", "Other")


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "semeval2010_task8").is_dir(), reason="needs ../shared/data/semeval2010_task8")
def test_read_the_whole_semeval_release(marker_tokenizer: Any) -> None:
    task = relation_task()
    train = task.read(SHARED / "semeval2010_task8" / "TRAIN_FILE.TXT", DataConfig())
    test = task.read(SHARED / "semeval2010_task8" / "TEST_FILE_FULL.TXT", DataConfig())
    assert (len(train), len(test)) == (8000, 2717)
    task.initialize(train, marker_tokenizer, None)
    assert len(task.labels) == 19
    assert {example.label for example in test} <= set(task.labels)


def test_spec_errors(tmp_path: Path) -> None:
    spec = write(tmp_path / "spec.yaml", "task:\n  type: relation\n  negative_label: ' '\n  head: cls\n")
    with pytest.raises(HomofitError) as error:
        load_config(spec)
    assert str(error.value) == (f"invalid spec:\n  {spec}:4: task.head: Input should be 'entity_start' or 'pooled'\n"
                                f"  {spec}:3: task.negative_label: give a label name, or null for none")
