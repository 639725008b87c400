"""homofit.tasks.dialogue: SGD files and JSONL into context -> response examples, and the prompt's turns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from homofit.config import DataConfig
from homofit.errors import HomofitError
from homofit.tasks.dialogue import DialogueConfig, DialogueTask

SGD = Path(__file__).parent.parent / "data" / "generation" / "sgd"


def task(**config: object) -> DialogueTask:
    return DialogueTask(DialogueConfig(**config), {})


def test_every_system_turn_of_sgd_is_an_example_with_all_earlier_turns() -> None:
    dialogues = json.loads((SGD / "dev" / "dialogues_001.json").read_text())
    examples = task().read(SGD / "dev" / "dialogues_001.json", DataConfig())
    assert len(examples) == sum(turn["speaker"] == "SYSTEM" for d in dialogues for turn in d["turns"]) == 12
    third = examples[2]
    assert [turn.text for turn in third.turns] == [turn["utterance"] for turn in dialogues[0]["turns"][:5]]
    assert third.references == [dialogues[0]["turns"][5]["utterance"]]
    assert third.origin.endswith(f"#{dialogues[0]['dialogue_id']}:turn5")


def test_a_split_folder_reads_like_its_file() -> None:
    from_folder = task().read(SGD / "train", DataConfig())
    from_file = task().read(SGD / "train" / "dialogues_001.json", DataConfig())
    assert [e.references for e in from_folder] == [e.references for e in from_file] and len(from_file) == 34


def test_respond_as_the_user_instead() -> None:
    examples = task(respond_as="USER").read(SGD / "dev", DataConfig())
    assert len(examples) == 10  # each dialogue's first user turn has no context
    assert examples[0].turns[-1].speaker == "SYSTEM"
    with pytest.raises(HomofitError, match="no turn by speaker 'BOT'"):
        task(respond_as="BOT").read(SGD / "dev", DataConfig())


def test_prompt_source_keeps_the_latest_turns_with_tags_and_roles(tmp_path: Path) -> None:
    path = tmp_path / "context.jsonl"
    turns = [{"speaker": "USER", "text": "A table."}, {"speaker": "SYSTEM", "utterance": "Which city?"},
             {"speaker": "USER", "text": "San Jose."}]
    path.write_text(json.dumps({"turns": turns}) + "\n")
    [example] = task().read_predict_input(str(path), DataConfig())
    source = task(context_turns=2, speakers={"USER": "Customer", "SYSTEM": "Agent"}).prompt_source(example, "causal")
    assert [(turn.text, turn.tag, turn.role) for turn in source.turns] == [
        ("Which city?", "Agent", "assistant"), ("San Jose.", "Customer", "user")]
    assert (source.cut, source.respond_tag) == ("start", "Agent")


def test_jsonl_turns_as_strings_alternate_and_end_with_the_other_speaker(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"turns": ["Hi.", "Hello, how can I help?", "A table."], "response": "Where?"}) + "\n")
    [example] = task().read(path, DataConfig())
    assert [(turn.speaker, turn.text) for turn in example.turns] == [
        ("USER", "Hi."), ("SYSTEM", "Hello, how can I help?"), ("USER", "A table.")]
    assert example.references == ["Where?"]
    path.write_text(json.dumps({"turns": [], "response": "x"}) + "\n")
    with pytest.raises(HomofitError, match=r"d.jsonl:1: 'turns' must be a non-empty list"):
        task().read(path, DataConfig())
    path.write_text(json.dumps({"turns": ["Hi."]}) + "\n")
    with pytest.raises(HomofitError, match=r"d.jsonl:1: 'response' must be the response text"):
        task().read(path, DataConfig())


def test_predict_input_raw_lines_are_single_user_turns() -> None:
    examples = task().read_predict_input("Book a table.\nThanks.", DataConfig())
    assert [[(t.speaker, t.text) for t in e.turns] for e in examples] == [[("USER", "Book a table.")],
                                                                          [("USER", "Thanks.")]]


def test_convert_sgd_writes_jsonl_that_reads_back_the_same(tmp_path: Path) -> None:
    import importlib.util

    script = Path(__file__).parent.parent.parent / "scripts" / "convert_sgd.py"
    spec = importlib.util.spec_from_file_location("convert_sgd", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "dev.jsonl"
    assert module.convert(SGD / "dev", out, "SYSTEM", 2) == 12
    converted = task(context_turns=2).read(out, DataConfig())
    direct = task(context_turns=2).read(SGD / "dev", DataConfig())
    assert [e.references for e in converted] == [e.references for e in direct]
    assert [[t.text for t in e.turns] for e in converted] == [[t.text for t in e.turns[-2:]] for e in direct]
