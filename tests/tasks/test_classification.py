"""homofit.tasks.classification: CSV/TSV/JSONL reading, labels and weights, encoding, decoding, reports,
and a whole run through the command line on the shipped SST-2 sample."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy
import pytest
import torch
import yaml
from test_cli import invoke, ok

from homofit.config import DataConfig, load_config
from homofit.data.windows import IGNORE_INDEX
from homofit.errors import HomofitError
from homofit.tasks.classification import ClassificationConfig, ClassificationTask, ClassPrediction, TextExample

DATA = Path(__file__).parent.parent / "data" / "classification"
REPO = Path(__file__).parent.parent.parent
SHARED = REPO.parent / "shared" / "data"
CLS, SEP = 2, 3  # ids of [CLS] and [SEP] in tests/data/vocab.txt
SST2 = DataConfig(format="tsv", header=True, columns={"label": 0, "text": 1})


def task(labels: list[str] | None = None, **config: Any) -> ClassificationTask:
    return ClassificationTask(ClassificationConfig(**config), {"labels": labels} if labels else {})


def write(path: Path, text: str, newline: str = "\n") -> Path:
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


def read_error(path: Path, data: DataConfig, classifier: ClassificationTask | None = None) -> str:
    with pytest.raises(HomofitError) as error:
        (classifier or task()).read(path, data)
    return str(error.value)


def example(text: str, labels: list[str] | None = None, pair: str | None = None) -> TextExample:
    return TextExample(text, pair, labels, "x")


# -- reading ----------------------------------------------------------------------------------------------


def test_read_sst2_sample_tsv_with_crlf_header_and_label_names() -> None:
    assert (DATA / "sst2_train.tsv").read_bytes().count(b"\r\n") == 49  # the release's train file has CRLF ends
    examples = task(label_names=["negative", "positive"]).read(DATA / "sst2_train.tsv", SST2)
    assert len(examples) == 48
    assert (examples[0].text, examples[0].labels, examples[0].source) == (
        "hide new secretions from the parental units", ["negative"], f"{DATA / 'sst2_train.tsv'}:2")
    assert [example.labels[0] for example in examples].count("positive") == 22
    # dev names its text column `content`, train `sentence`: by index, one spec reads both
    assert task().read(DATA / "sst2_dev.tsv", SST2)[0].text == "one long string of cliches ."


def test_read_csv_quoting_crlf_and_line_numbers(tmp_path: Path) -> None:
    text = ('label,text\n'
            'pos,"a film, finally"\n'
            'neg,"she said ""no""\nand left"\n'
            '\n'
            'pos,plain\n')
    path = write(tmp_path / "a.csv", text, newline="\r\n")
    examples = task().read(path, DataConfig())
    assert [(example.text, example.labels, example.source) for example in examples] == [
        ("a film, finally", ["pos"], f"{path}:2"),
        ('she said "no"\r\nand left', ["neg"], f"{path}:3"),
        ("plain", ["pos"], f"{path}:6"),
    ]


def test_read_headerless_tsv_by_index(tmp_path: Path) -> None:
    path = write(tmp_path / "a.tsv", "good\t1\nbad\t0\n")
    examples = task().read(path, DataConfig(columns={"text": 0, "label": -1}))
    assert [(example.text, example.labels) for example in examples] == [("good", ["1"]), ("bad", ["0"])]


def test_read_text_pairs_from_jsonl_with_integer_labels(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", '{"premise": "A man sleeps.", "hypothesis": "A man rests.", "label": 0}\n'
                                       '{"premise": "A cat.", "hypothesis": "No animal.", "label": "contradiction"}\n')
    classifier = task(label_names=["entailment", "neutral", "contradiction"])
    examples = classifier.read(path, DataConfig(columns={"text": "premise", "text_pair": "hypothesis"}))
    assert [(example.text, example.text_pair, example.labels) for example in examples] == [
        ("A man sleeps.", "A man rests.", ["entailment"]), ("A cat.", "No animal.", ["contradiction"]),
    ]


def test_read_multi_label_from_one_column_and_from_lists(tmp_path: Path) -> None:
    csv_path = write(tmp_path / "a.csv", "text,tags\nrates rise,economy|politics\nsunny,\ngoal!, sport \n")
    classifier = task(multi_label=True, label_separator="|")
    examples = classifier.read(csv_path, DataConfig(columns={"label": "tags"}))
    assert [example.labels for example in examples] == [["economy", "politics"], [], ["sport"]]
    jsonl_path = write(tmp_path / "a.jsonl", '{"text": "x", "label": ["b", "a", "b"]}\n{"text": "y", "label": []}\n')
    assert [example.labels for example in classifier.read(jsonl_path, DataConfig())] == [["a", "b"], []]


@pytest.mark.parametrize(
    ("file_text", "data", "message"),
    [
        ("text,label\nfine\n", DataConfig(format="csv"),
         "2: no column 'label' for data.columns.label; the row has 1 cell(s): ['fine']."),
        ("text,label\n\"open,pos\n", DataConfig(format="csv"),
         ("2: malformed CSV (unexpected end of data); a quote that "
          "opens a cell must close it, and quotes inside one are doubled.")),
        ("text,label\nok,\n", DataConfig(format="csv"), "2: empty label."),
    ],
)
def test_read_errors_name_file_and_line(tmp_path: Path, file_text: str, data: DataConfig, message: str) -> None:
    path = write(tmp_path / "a.csv", file_text)
    assert read_error(path, data) == f"{path}:{message}"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (DataConfig(columns={"sentence": "text"}),
         ("data.columns.sentence: not a classification column; use text, text_pair (the second text of a pair) "
          "and label.")),
        (DataConfig(columns={"text": "review"}),
         "data.columns.text: no column 'review' in the header of {path} (text, label)."),
        (DataConfig(header=False), ("data.columns.text: 'text' names a column, but {path} is read without a header "
                                    "(data.header: false); choose the column by index (0 = first, -1 = last).")),
        (DataConfig(format="conll"), ("{path}: classification reads CSV, TSV or JSONL, not 'conll'; set data.format to "
                                      "csv, tsv or jsonl.")),
    ],
)
def test_column_and_format_errors(tmp_path: Path, data: DataConfig, message: str) -> None:
    path = write(tmp_path / "a.csv", "text,label\nfine,pos\n")
    assert read_error(path, data) == message.format(path=path)


def test_label_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", '{"text": "x", "label": ["a", "b"]}\n')
    assert read_error(path, DataConfig()) == (f"{path}:1: the label is a list ['a', 'b']; set task.multi_label: true "
                                              "for several labels per text.")
    path = write(tmp_path / "b.jsonl", '{"text": "x", "label": 2}\n')
    assert read_error(path, DataConfig(), task(label_names=["no", "yes"])) == (
        f"{path}:1: label 2 is neither one of task.label_names nor an index into them (0..1).")


def test_read_predict_input_raw_lines_pairs_and_jsonl(tmp_path: Path) -> None:
    classifier = task()
    examples = classifier.read_predict_input("a fine film\n\nawful", SST2)
    assert [(example.text, example.labels, example.source) for example in examples] == [
        ("a fine film", None, "line 1"), ("awful", None, "line 3")]
    pairs = DataConfig(columns={"text": "premise", "text_pair": "hypothesis"})
    assert [(example.text, example.text_pair)
            for example in classifier.read_predict_input("A man.\tA person.", pairs)] == [("A man.", "A person.")]
    with pytest.raises(HomofitError, match="line 1: this model reads text pairs; put a TAB between the two texts"):
        classifier.read_predict_input("no tab here", pairs)
    # a model trained on TSV columns by index reads JSONL by the keys' own names
    path = write(tmp_path / "in.jsonl", '{"text": "great"}\n{"text": "bad", "label": "0"}\n')
    assert [(example.text, example.labels) for example in classifier.read_predict_input(str(path), SST2)] == [
        ("great", None), ("bad", ["0"])]
    assert classifier.read_predict_input("word " * 100, SST2)[0].text == "word " * 100


# -- labels and weights -----------------------------------------------------------------------------------


def test_label_order_is_stable() -> None:
    examples = [example("x", [label]) for label in ["10", "2", "b", "a", "2"]]
    classifier = task()
    assert classifier.initialize(examples, None, None) == []
    assert classifier.labels == ["2", "10", "a", "b"]
    assert classifier.initialize(examples, None, {"labels": ["b", "z"]}) == ["2", "10", "a"]
    assert classifier.labels == ["b", "z", "2", "10", "a"]
    named = task(label_names=["negative", "neutral", "positive"])
    named.initialize([example("x", ["positive"]), example("y", ["negative"])], None, None)
    assert named.labels == ["negative", "neutral", "positive"]
    assert named.state() == {"labels": ["negative", "neutral", "positive"]}


def test_one_label_is_not_enough() -> None:
    with pytest.raises(HomofitError, match=r"data.train: the training data has only the label\(s\) \['a'\]"):
        task().initialize([example("x", ["a"])], None, None)


def test_balanced_class_weights() -> None:
    examples = [example("x", [label]) for label in ["a", "a", "a", "b"]]
    classifier = task(class_weights="balanced")
    classifier.initialize(examples, None, None)
    assert classifier.head.class_weights == [4 / (2 * 3), 4 / (2 * 1)]  # sklearn: n / (classes x count)
    multi = task(multi_label=True, class_weights="balanced")
    multi.initialize([example("x", ["a", "b"]), example("y", ["a"]), example("z", [])], None, None)
    assert multi.head.class_weights == [1 / 2, 2 / 1]  # negatives / positives


def test_explicit_class_weights() -> None:
    classifier = task(class_weights={"b": 3.0})
    classifier.initialize([example("x", ["a"]), example("y", ["b"])], None, None)
    assert classifier.head.class_weights == [1.0, 3.0]
    with pytest.raises(HomofitError,
                       match=r"task.class_weights: \['c'\] are not labels of the training data \(a, b\)."):
        task(class_weights={"c": 2.0}).initialize([example("x", ["a"]), example("y", ["b"])], None, None)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("  threshold: 0.3\n", "3: task.threshold: only read with multi_label: true"),
        ("  class_weights: {a: 0}\n", "3: task.class_weights: every weight must be positive"),
        ("  label_names: [neg, pos, neg]\n", "3: task.label_names: a name is listed twice"),
    ],
)
def test_spec_errors(tmp_path: Path, section: str, message: str) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("task:\n  type: classification\n" + section, encoding="utf-8")
    with pytest.raises(HomofitError) as error:
        load_config(spec)
    assert str(error.value) == f"invalid spec:\n  {spec}:{message}"


# -- encode, collate, loss --------------------------------------------------------------------------------


def test_encode_single_texts_cut_to_max_length(tiny_tokenizer: Any) -> None:
    classifier = task(["neg", "pos"])
    examples = [example("the party is great", ["pos"]), example("trump said", ["other"])]
    features = classifier.encode(examples, tiny_tokenizer, DataConfig(max_length=8))
    assert features == [
        {"example_index": 0, "input_ids": [CLS, 109, 158, 113, 190, SEP], "truncated": False, "labels": 1},
        {"example_index": 1, "input_ids": [CLS, 153, 140, SEP], "truncated": False, "labels": IGNORE_INDEX},
    ]
    cut = classifier.encode(examples[:1], tiny_tokenizer, DataConfig(max_length=8).model_copy(update={"max_length": 5}))
    assert cut[0]["input_ids"] == [CLS, 109, 158, 113, SEP]
    assert cut[0]["truncated"] is True


def test_encode_pairs_with_segment_ids(tiny_tokenizer: Any) -> None:
    features = task(["a", "b"]).encode([example("the party", ["b"], pair="is great")], tiny_tokenizer, DataConfig())
    assert features[0]["input_ids"] == [CLS, 109, 158, SEP, 113, 190, SEP]
    assert features[0]["token_type_ids"] == [0, 0, 0, 0, 1, 1, 1]


def test_collate_pads_and_builds_label_tensors(tiny_tokenizer: Any) -> None:
    features = [{"example_index": 0, "input_ids": [2, 5, 3], "token_type_ids": [0, 0, 0], "truncated": False,
                 "labels": [0, 2]},
                {"example_index": 1, "input_ids": [2, 3], "token_type_ids": [0, 0], "truncated": False, "labels": []}]
    batch = task(["a", "b", "c"], multi_label=True).collate(features, tiny_tokenizer)
    assert batch["input_ids"].tolist() == [[2, 5, 3], [2, 3, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["token_type_ids"].tolist() == [[0, 0, 0], [0, 0, 0]]
    assert batch["labels"].tolist() == [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    single = task(["a", "b"]).collate([{**feature, "labels": index} for index, feature in enumerate(features)],
                                      tiny_tokenizer)
    assert single["labels"].dtype == torch.long and single["labels"].tolist() == [0, 1]


def fixed_logits_model(logits: list[list[float]]) -> Any:
    """A stand-in model whose output is always these logits."""
    return lambda **inputs: SimpleNamespace(logits=torch.tensor(logits))


def test_loss_uses_the_class_weights() -> None:
    classifier = task(["a", "b"], class_weights={"a": 1.0, "b": 3.0})
    classifier.head.class_weights = [1.0, 3.0]
    logits = [[2.0, 0.0], [0.5, 1.5]]
    batch = {"input_ids": torch.zeros(2, 3, dtype=torch.long), "labels": torch.tensor([0, 1])}
    total, units = classifier.loss(fixed_logits_model(logits), batch)
    log_probabilities = torch.tensor(logits).log_softmax(dim=-1)
    # summed over examples, each counted by its class weight: sum / units is the weighted mean
    torch.testing.assert_close(total, -(1.0 * log_probabilities[0, 0] + 3.0 * log_probabilities[1, 1]))
    torch.testing.assert_close(units, torch.tensor(4.0))


def test_multi_label_loss_is_binary_cross_entropy_with_positive_weights() -> None:
    classifier = task(["a", "b"], multi_label=True)
    classifier.head.class_weights = [2.0, 1.0]
    batch = {"input_ids": torch.zeros(1, 3, dtype=torch.long), "labels": torch.tensor([[1.0, 0.0]])}
    total, units = classifier.loss(fixed_logits_model([[0.0, 0.0]]), batch)
    torch.testing.assert_close(total, torch.tensor(2.0 * numpy.log(2) + numpy.log(2), dtype=torch.float))
    assert int(units) == 2  # one unit per (example, label) pair


# -- decode, score, records -------------------------------------------------------------------------------


def test_decode_and_score_single_label() -> None:
    classifier = task(["neg", "pos"])
    examples = [example("a", ["pos"]), example("b", ["neg"]), example("c", ["neg"])]
    features = [{"example_index": index, "truncated": index == 2} for index in (2, 0, 1)]
    outputs = [numpy.array([0.2, 0.8]), numpy.array([0.3, 0.7]), numpy.array([0.9, 0.1])]
    predictions = classifier.decode(examples, features, outputs)
    assert [prediction.labels for prediction in predictions] == [["pos"], ["neg"], ["pos"]]
    report = classifier.score(examples, predictions)
    assert report["accuracy"] == pytest.approx(2 / 3)
    assert report["confusion_matrix"] == {"labels": ["neg", "pos"], "matrix": [[1, 1], [0, 1]]}
    assert report["truncated_inputs"] == 1
    records = classifier.prediction_records(examples, predictions)
    assert records[0] == {"source": "x", "text": "a", "label": "pos", "probabilities": {"neg": 0.3, "pos": 0.7},
                          "gold_label": "pos"}
    assert records[2]["truncated"] is True


def test_decode_multi_label_threshold() -> None:
    classifier = task(["a", "b", "c"], multi_label=True, threshold=0.4)
    predictions = classifier.decode([example("x", ["a"])], [{"example_index": 0, "truncated": False}],
                                    [numpy.array([0.9, 0.4, 0.1])])
    assert predictions == [ClassPrediction(["a", "b"], [pytest.approx(0.9), pytest.approx(0.4), pytest.approx(0.1)],
                                           False)]
    record = classifier.prediction_records([example("x", ["a"])], predictions)[0]
    assert (record["labels"], record["gold_labels"]) == (["a", "b"], ["a"])
    assert classifier.score([example("x", ["a"])], predictions)["accuracy"] == 0.0


def test_scoring_needs_labels() -> None:
    with pytest.raises(HomofitError, match="x: no label; scoring needs a label for every example."):
        task(["a", "b"]).score([example("t")], [ClassPrediction(["a"], [1.0, 0.0], False)])


# -- the whole recipe, through the command line -----------------------------------------------------------


@pytest.fixture(scope="module")
def sst2_run(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> Path:
    """48 SST-2 sentences, batch 16: 3 steps an epoch, 2 epochs, on the tiny random BERT."""
    folder = tmp_path_factory.mktemp("sst2-run")
    spec = {
        "task": {"type": "classification", "label_names": ["negative", "positive"], "class_weights": "balanced"},
        "data": {"format": "tsv", "header": True, "columns": {"label": 0, "text": 1},
                 "train": str(DATA / "sst2_train.tsv"), "dev": str(DATA / "sst2_dev.tsv"),
                 "test": str(DATA / "sst2_test.tsv"), "max_length": 32},
        "model": {"name_or_path": str(tiny_bert)},
        "optim": {"lr": 1.0e-3},
        "train": {"epochs": 2, "batch_size": 16, "device": "cpu", "precision": "fp32", "seed": 3},
        "output": {"dir": str(folder / "runs")},
    }
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    ok(invoke("train", folder / "spec.yaml", "--run-dir", folder / "run"))
    return folder / "run"


def test_run_reports(sst2_run: Path) -> None:
    test = json.loads((sst2_run / "reports" / "test.json").read_text())
    assert [key for key, value in test.items() if isinstance(value, float)] == [
        "loss", "accuracy", "macro_f1", "weighted_f1"]
    gold = [example.labels[0]
            for example in task(label_names=["negative", "positive"]).read(DATA / "sst2_test.tsv", SST2)]
    records = [json.loads(line) for line in (sst2_run / "predictions" / "test.jsonl").read_text().splitlines()]
    predicted = [record["label"] for record in records]
    # the eval loss is the training loss on test: the cross-entropy of the gold labels, weighted by the balanced
    # class weights (sklearn's n / (classes x count) over train) as in training
    train = [example.labels[0] for example in task(label_names=["negative", "positive"]).read(DATA / "sst2_train.tsv",
                                                                                              SST2)]
    weight = {label: len(train) / (2 * train.count(label)) for label in ("negative", "positive")}
    assert test["loss"] == pytest.approx(
        -sum(weight[record["gold_label"]] * math.log(record["probabilities"][record["gold_label"]])
             for record in records)
        / sum(weight[record["gold_label"]] for record in records), rel=1e-4)
    assert test["accuracy"] == pytest.approx(sum(g == p for g, p in zip(gold, predicted)) / 16)
    assert sum(map(sum, test["confusion_matrix"]["matrix"])) == 16
    assert test["per_class"]["negative"]["support"] == gold.count("negative") == 10
    text = (sst2_run / "reports" / "test.txt").read_text()
    assert "Confusion matrix (rows: gold label, columns: predicted label)" in text
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert not (sst2_run / "reports" / "test.confusion.png").exists()
    else:
        assert (sst2_run / "reports" / "test.confusion.png").read_bytes()[:4] == b"\x89PNG"


def test_checkpoint_is_a_plain_transformers_classifier(sst2_run: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(sst2_run / "checkpoints" / "best")
    assert model.config.id2label == {0: "negative", 1: "positive"}
    state = json.loads((sst2_run / "checkpoints" / "best" / "homofit.json").read_text())
    assert state["task_state"] == {"labels": ["negative", "positive"]}


def test_predict_and_eval(sst2_run: Path, tmp_path: Path) -> None:
    result = ok(invoke("predict", "--checkpoint", sst2_run / "checkpoints" / "best", "a fine film\nawful"))
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [record["text"] for record in records] == ["a fine film", "awful"]
    for record in records:
        assert set(record["probabilities"]) == {"negative", "positive"}
        assert sum(record["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert record["label"] == max(record["probabilities"], key=record["probabilities"].get)
    ok(invoke("eval", "--checkpoint", sst2_run / "checkpoints" / "best", "--split", "test", "--out", tmp_path / "eval"))
    again = json.loads((tmp_path / "eval" / "test.json").read_text())
    assert again["accuracy"] == json.loads((sst2_run / "reports" / "test.json").read_text())["accuracy"]


def test_init_prints_a_valid_starter_spec(tmp_path: Path) -> None:
    result = ok(invoke("init", "classification"))
    (tmp_path / "spec.yaml").write_text(result.stdout, encoding="utf-8")
    assert load_config(tmp_path / "spec.yaml").task.type == "classification"


def test_shipped_sst2_spec_is_valid() -> None:
    spec = load_config(REPO / "configs" / "sst2.yaml")
    assert (spec.task.label_names, spec.data.columns, spec.data.max_train_samples) == (
        ["negative", "positive"], {"label": 0, "text": 1}, 8000)


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "sst2").is_dir(), reason="needs ../shared/data/sst2")
def test_read_the_whole_sst2_release() -> None:
    classifier = task(label_names=["negative", "positive"])
    sizes = {name: len(classifier.read(SHARED / "sst2" / f"{name}.tsv", SST2)) for name in ("train", "dev", "test")}
    assert sizes == {"train": 67349, "dev": 872, "test": 1821}
