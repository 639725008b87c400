"""Dialogues: the Schema-Guided Dialogue (SGD) files and homofit's JSONL, as context -> response examples."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from homofit.errors import HomofitError
from homofit.textfiles import read_text, require_file


@dataclass
class Turn:
    speaker: str
    text: str


@dataclass
class Dialogue:
    turns: list[Turn]
    origin: str  # file and dialogue id, for messages and prediction records


def sgd_files(path: Path) -> list[Path]:
    """An SGD split: a folder of `dialogues_*.json` (its schema.json is not needed) or one such file."""
    if path.is_dir():
        files = sorted(path.glob("dialogues_*.json"))
        if not files:
            raise HomofitError(f"{path}: no dialogues_*.json files; point data.* at an SGD split folder "
                               "(e.g. ../shared/data/sgd/train) or a JSONL file.")
        return files
    require_file(path)
    return [path]


def read_sgd(path: Path) -> list[Dialogue]:
    """Every dialogue of an SGD split, turns in order."""
    dialogues = []
    for file in sgd_files(path):
        try:
            records = json.loads(read_text(file))
        except json.JSONDecodeError as error:
            raise HomofitError(f"{file}:{error.lineno}: not valid JSON ({error.msg}).") from None
        if not isinstance(records, list):
            raise HomofitError(f"{file}: an SGD dialogues file holds a JSON list of dialogues.")
        for position, record in enumerate(records):
            origin = (f"{file}#{record.get('dialogue_id', position)}" if isinstance(record, dict)
                      else f"{file}#{position}")
            try:
                turns = [Turn(str(turn["speaker"]), turn["utterance"]) for turn in record["turns"]]
            except (KeyError, TypeError):
                raise HomofitError(f"{origin}: each dialogue needs turns[] with 'speaker' and 'utterance'.") from None
            for index, turn in enumerate(turns):
                if not isinstance(turn.text, str):
                    raise HomofitError(f"{origin}: turns[{index}].utterance must be text, not "
                                       f"{type(turn.text).__name__} {json.dumps(turn.text)[:40]}.")
            dialogues.append(Dialogue(turns, origin))
    return dialogues


def response_examples(dialogues: list[Dialogue], respond_as: str) -> list[tuple[list[Turn], Turn, str]]:
    """(all earlier turns, the response, origin) for every turn by `respond_as` that follows at least one turn."""
    examples = []
    for dialogue in dialogues:
        for index, turn in enumerate(dialogue.turns):
            if turn.speaker == respond_as and index > 0:
                examples.append((dialogue.turns[:index], turn, f"{dialogue.origin}:turn{index}"))
    return examples


def turns_from_json(value: Any, speakers: tuple[str, str], where: str) -> list[Turn]:
    """JSONL turns: objects with speaker and text (or utterance), or plain strings.

    Plain strings alternate between the two speakers `(other, responder)` so that the last turn is the other's,
    the one the response answers.
    """
    if not isinstance(value, list) or not value:
        raise HomofitError(f"{where}: 'turns' must be a non-empty list of strings or {{speaker, text}} objects.")
    turns = []
    for position, item in enumerate(value):
        if isinstance(item, str):
            from_end = len(value) - 1 - position
            turns.append(Turn(speakers[from_end % 2], item))
        elif isinstance(item, dict) and "speaker" in item and ("text" in item or "utterance" in item):
            turns.append(Turn(str(item["speaker"]), str(item.get("text", item.get("utterance")))))
        else:
            raise HomofitError(f"{where}: turn {position} is neither a string nor an object with speaker and text.")
    return turns
