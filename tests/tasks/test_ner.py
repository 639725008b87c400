"""homofit.tasks.ner: reading, labels, encoding into windows and decoding back to words, records."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy
import pytest

from homofit.config import DataConfig
from homofit.data.windows import IGNORE_INDEX
from homofit.errors import HomofitError
from homofit.tasks.ner import NerConfig, NerExample, NerPrediction, NerTask, _repair_iob2

CLS, SEP = 2, 3  # ids of [CLS] and [SEP] in tests/data/vocab.txt


def ner_task(labels: list[str] | None = None, **config: object) -> NerTask:
    return NerTask(NerConfig(**config), {"labels": labels} if labels else {})


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def read_error(task: NerTask, path: Path, data: DataConfig | None = None) -> str:
    with pytest.raises(HomofitError) as error:
        task.read(path, data or DataConfig())
    return str(error.value)


# -- reading ----------------------------------------------------------------------------------------------


def test_read_conll_tab_separated(tmp_path: Path) -> None:
    path = write(tmp_path / "a.conll", "@paul\tB-person\nsaid\tO\n\t\nNew York\tB-location\n")
    examples = ner_task().read(path, DataConfig())
    assert [(example.tokens, example.tags, example.source) for example in examples] == [
        (["@paul", "said"], ["B-person", "O"], f"{path}:1"),
        (["New York"], ["B-location"], f"{path}:4"),
    ]


def test_read_conll_columns_by_index(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "-DOCSTART- -X- O O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n")
    task = ner_task()
    assert [example.tags for example in task.read(path, DataConfig())] == [["B-ORG", "O"]]
    chunks = task.read(path, DataConfig(columns={"token": 0, "tag": 2}))
    assert [(example.tokens, example.tags) for example in chunks] == [(["EU", "rejects"], ["B-NP", "B-VP"])]
    pos_as_token = task.read(path, DataConfig(columns={"token": 1, "tag": -1}))
    assert pos_as_token[0].tokens == ["NNP", "VBZ"]


def test_read_conll_gzip(tmp_path: Path) -> None:
    path = tmp_path / "a.conll.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("Köln\tB-LOC\nist\tO\n")
    assert [(example.tokens, example.tags) for example in ner_task().read(path, DataConfig())] == [
        (["Köln", "ist"], ["B-LOC", "O"])
    ]


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "a.conll", "a\tO\n\nb\tO\nlonely\nc\tO\n")
    assert read_error(ner_task(), path) == (
        f"{path}:4: expected a token in column 0 and a tag in column -1, found 1 column(s): ['lonely']. "
        "Set data.columns.token/tag."
    )


def test_column_out_of_range(tmp_path: Path) -> None:
    path = write(tmp_path / "a.conll", "a B-NP O\nb I-NP\n")
    assert read_error(ner_task(), path, DataConfig(columns={"token": 0, "tag": 2})) == (
        f"{path}:2: expected a token in column 0 and a tag in column 2, found 2 column(s): ['b', 'I-NP']. "
        "Set data.columns.token/tag."
    )


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"word": 0}, "data.columns: unknown key(s) ['word'] for NER; use token/tag (CoNLL) or tokens/tags (JSONL)."),
        ({"tag": "ner"}, "data.columns.tag: CoNLL columns are chosen by index (0 = first, -1 = last), got 'ner'."),
    ],
)
def test_bad_columns(tmp_path: Path, columns: dict, message: str) -> None:
    path = write(tmp_path / "a.conll", "a\tO\n")
    assert read_error(ner_task(), path, DataConfig(columns=columns)) == message


def test_invalid_tag_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "a.conll", "a\tO\nb\tB-PER\nc\tPER\n")
    assert read_error(ner_task(), path) == f"{path}:3: tag 'PER' is not O or PREFIX-TYPE with PREFIX one of B, I, E, S."


def test_tag_outside_the_scheme_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "a.conll", "a\tO\nb\tB-PER\nc\tE-PER\n")
    assert read_error(ner_task(), path) == (
        f"{path}:3: tag 'E-PER' is not valid IOB2 (prefixes B/I only); set task.scheme to one of IOB1, IOB2, BIOES."
    )


@pytest.mark.parametrize(
    ("scheme", "tags", "expected"),
    [
        ("IOB1", ["I-PER", "I-PER", "B-PER", "O", "I-LOC"], ["B-PER", "I-PER", "B-PER", "O", "B-LOC"]),
        ("BIOES", ["S-PER", "B-LOC", "E-LOC", "O", "S-LOC"], ["B-PER", "B-LOC", "I-LOC", "O", "B-LOC"]),
    ],
)
def test_read_converts_scheme_to_iob2(tmp_path: Path, scheme: str, tags: list[str], expected: list[str]) -> None:
    path = write(tmp_path / "a.conll", "".join(f"w{index}\t{tag}\n" for index, tag in enumerate(tags)))
    assert ner_task(scheme=scheme).read(path, DataConfig())[0].tags == expected


def test_read_jsonl_string_tags(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", '{"tokens": ["Ada", "Lovelace", "wrote"], "tags": ["B-PER", "I-PER", "O"]}\n'
                                       '{"tokens": ["unlabeled"]}\n')
    examples = ner_task().read_predict_input(str(path), DataConfig())  # predict input: tags optional
    assert [(example.tokens, example.tags, example.source) for example in examples] == [
        (["Ada", "Lovelace", "wrote"], ["B-PER", "I-PER", "O"], f"{path}:1"),
        (["unlabeled"], None, f"{path}:2"),
    ]
    with pytest.raises(HomofitError, match=r"a.jsonl:2: no 'tags' field; training and scoring need a tag"):
        ner_task().read(path, DataConfig())  # train, dev, test and eval --data are scored: tags required


def test_read_jsonl_integer_tags_with_label_names(tmp_path: Path) -> None:
    # The Hugging Face datasets layout: integer `ner_tags` and the names in the dataset's features.
    path = write(tmp_path / "a.jsonl", '{"id": "0", "words": ["EU", "rejects", "German"], "ner_tags": [3, 0, 1]}\n')
    task = ner_task(label_names=["O", "B-MISC", "I-MISC", "B-ORG", "I-ORG"])
    examples = task.read(path, DataConfig(columns={"tokens": "words", "tags": "ner_tags"}))
    assert [(example.tokens, example.tags) for example in examples] == [
        (["EU", "rejects", "German"], ["B-ORG", "O", "B-MISC"])
    ]


@pytest.mark.parametrize(
    ("line", "label_names", "message"),
    [
        ('{"tokens": ["a"], "tags": [1]}', None, "1: tags are integers; list their names in task.label_names."),
        ('{"tokens": ["a"], "tags": [2]}', ["O", "B-X"], "1: tag ids [2] do not fit task.label_names (2 names)."),
        ('{"tokens": ["a", "b"], "tags": [1, -1]}', ["O", "B-X"],
         "1: tag ids [1, -1] do not fit task.label_names (2 names)."),
        ('{"tokens": ["a"], "tags": [null]}', ["O", "B-X"], "1: tag ids [None] do not fit task.label_names (2 names)."),
        ('{"tokens": ["a", "b"], "tags": ["O"]}', None, "1: 2 tokens but 1 tags."),
        ('{"words": ["a"]}', None, "1: no 'tokens' field; set data.columns.tokens."),
        ('{"tokens": ["a"], "tags": ["S-X"]}', None,
         "1: tag 'S-X' is not valid IOB2 (prefixes B/I only); set task.scheme to one of IOB1, IOB2, BIOES."),
    ],
)
def test_read_jsonl_errors(tmp_path: Path, line: str, label_names: list[str] | None, message: str) -> None:
    path = write(tmp_path / "a.jsonl", line + "\n")
    assert read_error(ner_task(label_names=label_names), path) == f"{path}:{message}"


def test_read_rejects_other_formats(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "token,tag\n")
    assert read_error(ner_task(), path) == (f"{path}: NER reads CoNLL columns or JSONL, not 'csv'; "
                                            "set data.format to conll or jsonl.")


def test_read_predict_input_raw_text_and_files(tmp_path: Path) -> None:
    task = ner_task()
    examples = task.read_predict_input("Ada Lovelace lives in New-York.\n\nHi!", DataConfig())
    assert [(example.tokens, example.source) for example in examples] == [
        (["Ada", "Lovelace", "lives", "in", "New-York", "."], "line 1"), (["Hi", "!"], "line 3"),
    ]
    text = examples[0].text
    assert [text[start:end] for start, end in examples[0].offsets] == examples[0].tokens

    lines = write(tmp_path / "input.txt", "one line\nanother one\n")
    assert [example.tokens for example in task.read_predict_input(str(lines), DataConfig())] == [
        ["one", "line"], ["another", "one"],
    ]
    conll = write(tmp_path / "input.conll", "Ada\tB-PER\n")
    assert [(example.tokens, example.tags) for example in task.read_predict_input(str(conll), DataConfig())] == [
        (["Ada"], ["B-PER"])
    ]


def test_read_predict_input_text_longer_than_a_file_name() -> None:
    text = "word " * 100  # 500 characters: too long to even ask the file system about
    assert ner_task().read_predict_input(text, DataConfig())[0].tokens == ["word"] * 100


# -- labels -----------------------------------------------------------------------------------------------


def test_initialize_fixes_labels_fresh_and_from_a_checkpoint() -> None:
    examples = [NerExample(["a", "b", "c"], ["B-PER", "I-PER", "B-LOC"], "x"), NerExample(["d"], None, "y")]
    task = ner_task()
    assert task.initialize(examples, None, None) == []
    assert task.labels == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    # Labels from a checkpoint keep their order and ids; new ones come after them.
    previous = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG"]
    assert task.initialize(examples, None, {"labels": previous}) == ["B-LOC", "I-LOC"]
    assert task.labels == ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
    assert task.state() == {"labels": task.labels}


# -- encode and decode ------------------------------------------------------------------------------------

LABELS = ["O", "B-group", "I-group", "B-location", "I-location", "B-person", "I-person"]
# Subwords in the tiny vocab:  trump 1, zzz 3, said 1, today 1, köln 4, is 1, qq 2, the 1, party 1 (15 in all).
TOKENS = ["Trump", "zzz", "said", "today", "Köln", "is", "qq", "the", "party"]
TAGS = ["B-person", "I-person", "O", "O", "B-location", "O", "B-group", "I-group", "O"]


def fake_outputs(features: list[dict], word_labels: list[int], wrong: int) -> list[tuple[numpy.ndarray, numpy.ndarray]]:
    """Model outputs that give each word's first subword `word_labels[word]` in the window that owns the word,
    and `wrong` everywhere else: decoding must read exactly those positions."""
    outputs = []
    for feature in features:
        own_start, own_end = feature["owned"]
        indices, previous = [], None
        for word in feature["word_ids"]:
            first = word is not None and word != previous
            indices.append(word_labels[word] if first and own_start <= word < own_end else wrong)
            previous = word
        outputs.append((numpy.array(indices), numpy.full(len(indices), 0.9, dtype=numpy.float32)))
    return outputs


def test_encode_long_sentence_into_windows(tiny_tokenizer) -> None:
    task = ner_task(LABELS)
    data = DataConfig(max_length=8, stride=2)  # 6 subwords a window between [CLS] and [SEP]
    features = task.encode([NerExample(TOKENS, TAGS, "s")], tiny_tokenizer, data)
    ranges = [(min(w for w in f["word_ids"] if w is not None), max(w for w in f["word_ids"] if w is not None) + 1)
              for f in features]
    # Words 0-3 fill the first window (1+3+1+1 subwords); the next starts 2 subwords back, at word 2; köln's
    # 4 subwords leave no room to share with the third. Each overlap is split between its two windows.
    assert ranges == [(0, 4), (2, 5), (5, 9)]
    assert [feature["owned"] for feature in features] == [(0, 3), (3, 5), (5, 9)]
    assert all(feature["example_index"] == 0 for feature in features)
    for feature in features:
        assert len(feature["input_ids"]) <= 8
        assert feature["input_ids"][0] == CLS and feature["input_ids"][-1] == SEP
        assert feature["word_ids"][0] is None and feature["word_ids"][-1] is None
    first = features[0]
    assert first["input_ids"] == [CLS, 153, 30, 98, 98, 140, 120, SEP]  # trump, z ##z ##z, said, today
    assert first["word_ids"] == [None, 0, 1, 1, 1, 2, 3, None]
    # The first subword of each word carries its label; later subwords and specials are ignored.
    assert first["labels"] == [IGNORE_INDEX, 5, 6, IGNORE_INDEX, IGNORE_INDEX, 0, 0, IGNORE_INDEX]
    assert features[2]["labels"] == [IGNORE_INDEX, 0, 1, IGNORE_INDEX, 2, 0, IGNORE_INDEX]  # is, q ##q, the, party


def test_encode_decode_round_trip_to_word_tags(tiny_tokenizer) -> None:
    task = ner_task(LABELS)
    examples = [NerExample(TOKENS, TAGS, "long"), NerExample(["the", "party"], ["O", "B-group"], "short")]
    features = task.encode(examples, tiny_tokenizer, DataConfig(max_length=8, stride=2))
    assert [feature["example_index"] for feature in features] == [0, 0, 0, 1]
    word_labels = {0: [LABELS.index(tag) for tag in TAGS], 1: [0, 1]}
    wrong = LABELS.index("I-location")
    outputs = [fake_outputs([feature], word_labels[feature["example_index"]], wrong)[0] for feature in features]
    predictions = task.decode(examples, features, outputs)
    assert [prediction.tags for prediction in predictions] == [TAGS, ["O", "B-group"]]
    assert [prediction.unscored for prediction in predictions] == [0, 0]
    assert predictions[0].scores == pytest.approx([0.9] * len(TOKENS))
    report = task.score(examples, predictions)
    assert (report["precision"], report["recall"], report["f1"]) == (1.0, 1.0, 1.0)


def test_decode_repairs_a_stray_inside_tag(tiny_tokenizer) -> None:
    task = ner_task(LABELS)
    tokens = ["the", "party", "said", "today"]
    examples = [NerExample(tokens, None, "s")]
    features = task.encode(examples, tiny_tokenizer, DataConfig())
    assert "labels" not in features[0]
    predicted = ["I-group", "I-group", "I-person", "B-person"]
    outputs = fake_outputs(features, [LABELS.index(tag) for tag in predicted], wrong=0)
    assert task.decode(examples, features, outputs)[0].tags == ["B-group", "I-group", "B-person", "B-person"]


@pytest.mark.parametrize(
    ("tags", "repaired"),
    [
        (["I-PER", "I-PER"], ["B-PER", "I-PER"]),
        (["O", "I-PER", "O"], ["O", "B-PER", "O"]),
        (["B-PER", "I-LOC", "I-LOC"], ["B-PER", "B-LOC", "I-LOC"]),
        (["B-PER", "I-PER", "B-PER"], ["B-PER", "I-PER", "B-PER"]),
        ([], []),
    ],
)
def test_repair_iob2(tags: list[str], repaired: list[str]) -> None:
    assert _repair_iob2(tags) == repaired


def test_words_without_subwords_are_unscored_and_reported(tiny_tokenizer) -> None:
    # A zero-width space vanishes in the tokenizer: no subword carries its label, it is predicted O and counted.
    task = ner_task(LABELS)
    examples = [NerExample(["Trump", "\u200b", "said"], ["B-person", "B-group", "O"], "s")]
    features = task.encode(examples, tiny_tokenizer, DataConfig())
    assert features[0]["word_ids"] == [None, 0, 2, None]
    assert features[0]["labels"] == [IGNORE_INDEX, 5, 0, IGNORE_INDEX]
    outputs = fake_outputs(features, [5, 1, 0], wrong=0)
    predictions = task.decode(examples, features, outputs)
    assert predictions[0].tags == ["B-person", "O", "O"]
    assert predictions[0].unscored == 1
    report = task.score(examples, predictions)
    assert report["unscored_words"] == 1
    assert (report["precision"], report["recall"]) == (1.0, 0.5)
    assert "unscored words: 1 (counted as O)" in task.format_report(report)


def test_collate_pads_inputs_and_labels(tiny_tokenizer) -> None:
    task = ner_task(LABELS)
    features = [{"input_ids": [2, 7, 3], "labels": [-100, 4, -100]}, {"input_ids": [2, 3], "labels": [-100, -100]}]
    batch = task.collate(features, tiny_tokenizer)
    assert batch["input_ids"].tolist() == [[2, 7, 3], [2, 3, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [[-100, 4, -100], [-100, -100, -100]]
    assert set(task.collate([{"input_ids": [2, 3]}], tiny_tokenizer)) == {"input_ids", "attention_mask"}


# -- prediction records -----------------------------------------------------------------------------------


def test_prediction_records_with_character_offsets() -> None:
    task = ner_task(LABELS)
    text = "I met Ada Lovelace in London."
    example = task.read_predict_input(text, DataConfig())[0]
    assert example.tokens == ["I", "met", "Ada", "Lovelace", "in", "London", "."]
    prediction = NerPrediction(["O", "O", "B-person", "I-person", "O", "B-location", "O"], 0,
                               [0.9, 0.9, 0.8, 0.6, 0.9, 0.7, 0.9])
    record = task.prediction_records([example], [prediction])[0]
    assert record == {
        "source": "line 1",
        "tokens": example.tokens,
        "tags": prediction.tags,
        "text": text,
        "entities": [
            {"label": "person", "start_token": 2, "end_token": 4, "text": "Ada Lovelace", "score": 0.6,
             "start": 6, "end": 18},
            {"label": "location", "start_token": 5, "end_token": 6, "text": "London", "score": 0.7,
             "start": 22, "end": 28},
        ],
    }
    for entity in record["entities"]:
        assert text[entity["start"] : entity["end"]] == entity["text"]


def test_prediction_records_of_labeled_examples_keep_gold_tags() -> None:
    task = ner_task(LABELS)
    example = NerExample(["New", "York"], ["B-location", "I-location"], "f.conll:3")
    record = task.prediction_records([example], [NerPrediction(["B-location", "O"], 0, [0.5, 0.5])])[0]
    assert record == {
        "source": "f.conll:3", "tokens": ["New", "York"], "tags": ["B-location", "O"],
        "gold_tags": ["B-location", "I-location"],
        "entities": [{"label": "location", "start_token": 0, "end_token": 1, "text": "New", "score": 0.5}],
    }
