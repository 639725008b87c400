"""Readers for extractive question answering: SQuAD JSON (v1.1 and v2.0) and JSON Lines.

Every answer is checked against its context (the text at `answer_start` must be the answer), so a
misaligned label is reported with its file and question rather than trained on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from homofit.data.readers import read_jsonl
from homofit.errors import HomofitError
from homofit.textfiles import read_text

JSONL_KEYS = ("id", "title", "question", "context", "answers")


@dataclass(frozen=True)
class Answer:
    text: str
    start: int  # character offset in the context

    @property
    def end(self) -> int:
        return self.start + len(self.text)


@dataclass
class QaExample:
    id: str
    question: str
    context: str
    answers: list[Answer] | None  # None: no gold given (predict input); []: unanswerable (SQuAD v2)
    title: str
    source: str

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


def read_squad_json(path: Path) -> list[QaExample]:
    """Questions of a SQuAD file: data[].paragraphs[].qas[] with answers[].text/answer_start (v2: is_impossible)."""
    try:
        document = json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise HomofitError(f"{path}:{error.lineno}: not valid JSON ({error.msg}).") from None
    articles = document.get("data") if isinstance(document, dict) else None
    if not isinstance(articles, list):
        raise HomofitError(f"{path}: not a SQuAD file (expected {{\"data\": [{{\"paragraphs\": [...]}}]}}); "
                           "JSON Lines files need the .jsonl extension or data.format: jsonl.")
    examples = []
    for article_index, article in enumerate(articles):
        where = f"{path}: data[{article_index}]"
        _expect(article, dict, where, "an article object with 'paragraphs'")
        title = str(article.get("title", f"article {article_index}"))
        paragraphs = _expect(article.get("paragraphs", []), list, f"{where}.paragraphs", "a list of paragraphs")
        for paragraph_index, paragraph in enumerate(paragraphs):
            where = f"{path}: data[{article_index}].paragraphs[{paragraph_index}]"
            _expect(paragraph, dict, where, "a paragraph object with 'context' and 'qas'")
            context = paragraph.get("context")
            if not isinstance(context, str):
                raise HomofitError(f"{where}: no 'context' text.")
            questions = _expect(paragraph.get("qas", []), list, f"{where}.qas", "a list of questions")
            for question_index, qa in enumerate(questions):
                _expect(qa, dict, f"{where}.qas[{question_index}]", "a question object with 'id', 'question' and "
                                                                      "'answers'")
                question_id = str(qa.get("id", f"{article_index}-{paragraph_index}-{question_index}"))
                source = f"{where}.qas[{question_index}] (id {question_id})"
                if not isinstance(qa.get("question"), str):
                    raise HomofitError(f"{source}: no 'question' text.")
                answers = [] if qa.get("is_impossible") else _answers_from_list(
                    _expect(qa.get("answers", []), list, f"{source}.answers", "a list of answers"), context, source)
                examples.append(QaExample(question_id, qa["question"], context, answers, title, source))
    return examples


def _expect(value: Any, kind: type, where: str, what: str) -> Any:
    """`value` when it is a `kind`; else the error naming the JSON path and what belongs there."""
    if not isinstance(value, kind):
        raise HomofitError(f"{where}: expected {what}, found {type(value).__name__} {json.dumps(value)[:40]}.")
    return value


def read_qa_jsonl(path: Path, keys: dict[str, str]) -> list[QaExample]:
    """One question a line: question, context and (optionally) answers, which may be given as
    {"text": [...], "answer_start": [...]} (Hugging Face datasets) or [{"text": ..., "answer_start": ...}]
    (SQuAD). An empty answer list marks an unanswerable question; no answers key, an unlabeled one."""
    examples = []
    for line, record in read_jsonl(path):
        source = f"{path}:{line}"
        for name in ("question", "context"):
            if not isinstance(record.get(keys[name]), str):
                raise HomofitError(f"{source}: no '{keys[name]}' text; set data.columns.{name} to the field's name.")
        context = record[keys["context"]]
        answers = None
        if keys["answers"] in record:
            answers = _answers_from_record(record[keys["answers"]], context, source)
        examples.append(QaExample(str(record.get(keys["id"], f"line-{line}")), record[keys["question"]], context,
                                  answers, str(record.get(keys["title"], "")), source))
    return examples


def _answers_from_record(value: Any, context: str, source: str) -> list[Answer]:
    if isinstance(value, dict):
        texts, starts = value.get("text"), value.get("answer_start")
        if not isinstance(texts, list) or not isinstance(starts, list) or len(texts) != len(starts):
            raise HomofitError(f"{source}: answers must hold two lists of the same length, 'text' and 'answer_start'.")
        value = [{"text": text, "answer_start": start} for text, start in zip(texts, starts)]
    if not isinstance(value, list):
        raise HomofitError(f"{source}: answers must be a list of {{\"text\", \"answer_start\"}} or "
                           "{\"text\": [...], \"answer_start\": [...]}.")
    return _answers_from_list(value, context, source)


def _answers_from_list(items: list[Any], context: str, source: str) -> list[Answer]:
    answers = []
    for item in items:
        if not (isinstance(item, dict) and isinstance(item.get("text"), str)
                and isinstance(item.get("answer_start"), int)):
            raise HomofitError(f"{source}: each answer needs 'text' (a string) and 'answer_start' (an integer).")
        answer = Answer(item["text"], item["answer_start"])
        if answer.start < 0 or not answer.text.strip() or context[answer.start : answer.end] != answer.text:
            found = context[max(0, answer.start) : answer.end]
            raise HomofitError(f"{source}: answer {answer.text!r} is not the context's text at answer_start "
                               f"{answer.start} (found {found!r}); fix answer_start (a character offset) or the text.")
        answers.append(answer)
    return answers
