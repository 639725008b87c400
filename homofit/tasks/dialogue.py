"""Dialogue response generation: the last turns of a conversation -> the next response.

Scored by the perplexity of the reference responses, BLEU and ROUGE-L against them, and distinct-1/2.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from homofit.data.dialogue import Turn, read_sgd, response_examples, turns_from_json
from homofit.data.readers import detect_format, jsonl_fields, open_text, read_jsonl
from homofit.errors import HomofitError
from homofit.generation import (
    GenerationTask,
    GenerationTaskConfig,
    PromptSource,
    SourceTurn,
)
from homofit.tasks import register
from homofit.textfiles import input_path

if TYPE_CHECKING:
    from homofit.config import DataConfig


class DialogueConfig(GenerationTaskConfig):
    type: Literal["dialogue"] = "dialogue"
    context_turns: int = Field(4, ge=1, description="How many of the latest turns the model reads.")
    respond_as: str = Field("SYSTEM", description="The speaker whose turns are the responses (the chat 'assistant').")
    speakers: dict[str, str] = Field(
        default_factory=lambda: {"USER": "User", "SYSTEM": "System"},
        description="Speaker -> the tag written before each turn in plain prompts ('User: ...').")
    prefix: str = Field("", description="Text put before the context, e.g. an instruction.")


@dataclass
class DialogueExample:
    turns: list[Turn]  # the whole context, oldest first; the model reads the last context_turns
    references: list[str]  # the response(s); empty when unknown
    origin: str


@register
class DialogueTask(GenerationTask):
    name: ClassVar[str] = "dialogue"
    config_type: ClassVar[type] = DialogueConfig
    headline_metric: ClassVar[str] = "bleu"  # for early stopping on perplexity set metric: perplexity, mode: min
    headline_metrics: ClassVar[tuple[str, ...]] = ("perplexity", "bleu", "rougeL", "distinct_1", "distinct_2")
    sentence_metric: ClassVar[str] = "sentence_rougeL"
    lower_is_better: ClassVar[frozenset[str]] = frozenset({"perplexity"})
    starter: ClassVar[dict[str, Any]] = {
        "data": {"train": "data/sgd/train", "dev": "data/sgd/dev", "test": "data/sgd/test", "max_length": 256},
        "model": {"name_or_path": "HuggingFaceTB/SmolLM2-135M-Instruct",
                  "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"},
        "train": {"epochs": 1, "batch_size": 8, "eval_batch_size": 16,
                  "early_stopping": {"metric": "perplexity", "mode": "min", "patience": 2}}}

    # -- data -------------------------------------------------------------------------------------------

    def read(self, path: Path, data: DataConfig, need_response: bool = True) -> list[DialogueExample]:
        """JSONL of {turns, response}, or Schema-Guided Dialogue files (a split folder or a dialogues_*.json):
        every turn by task.respond_as becomes one example, with all earlier turns as its context."""
        file_format = detect_format(path, data.format) if path.is_file() else "sgd"
        if file_format == "jsonl":
            return self._read_jsonl(path, data.columns, need_response)
        if file_format not in {"json", "sgd"}:
            raise HomofitError(f"{path}: dialogue reads JSONL or SGD dialogues (.json files or a split folder), "
                               f"not '{file_format}'.")
        examples = response_examples(read_sgd(path), self.config.respond_as)
        if not examples:
            raise HomofitError(f"{path}: no turn by speaker '{self.config.respond_as}' follows another turn; "
                               "set task.respond_as to the speaker who answers.")
        return [DialogueExample(context, [response.text], origin) for context, response, origin in examples]

    def _read_jsonl(self, path: Path, columns: dict[str, int | str], need_response: bool) -> list[DialogueExample]:
        turns_key, response_key = jsonl_fields(columns, ("turns", "response"), "dialogue").values()
        examples = []
        for line, record in read_jsonl(path):
            where = f"{path}:{line}"
            if turns_key not in record:
                raise HomofitError(f"{where}: no '{turns_key}' field; set data.columns.turns.")
            turns = turns_from_json(record[turns_key], self._string_speakers(where), where)
            response = record.get(response_key)
            if response is None and not need_response:
                references = []
            elif isinstance(response, str):
                references = [response]
            elif isinstance(response, list) and response and all(isinstance(item, str) for item in response):
                references = response
            else:
                raise HomofitError(f"{where}: '{response_key}' must be the response text (or a list of them); "
                                   "set data.columns.response.")
            examples.append(DialogueExample(turns, references, where))
        return examples

    def _string_speakers(self, where: str) -> tuple[str, str]:
        """(other speaker, responder): who says the turns given as plain strings, alternating."""
        others = [speaker for speaker in self.config.speakers if speaker != self.config.respond_as]
        if not others:
            raise HomofitError(f"{where}: turns given as strings need a second speaker in task.speakers besides "
                               f"'{self.config.respond_as}'.")
        return others[0], self.config.respond_as

    def read_predict_input(self, path_or_text: str, data: DataConfig) -> list[DialogueExample]:
        """JSONL or SGD files (responses optional), or raw text: each line one turn by the other speaker."""
        path = input_path(path_or_text)
        if path is not None and (path.is_dir() or detect_format(path, data.format) in {"jsonl", "json"}):
            return self.read(path, data, need_response=False)
        speaker = self._string_speakers("predict input")[0]
        lines = open_text(path) if path is not None else path_or_text.splitlines()
        return [DialogueExample([Turn(speaker, line.strip())], [], f"line {number}")
                for number, line in enumerate(lines, 1) if line.strip()]

    # -- prompts, scores and reports ---------------------------------------------------------------------

    def prompt_source(self, example: DialogueExample, layout: str) -> PromptSource:
        """The last context_turns turns; over max_length, the oldest turns (then tokens) are dropped first."""
        turns = [SourceTurn(turn.text, self.config.speakers.get(turn.speaker, turn.speaker),
                            "assistant" if turn.speaker == self.config.respond_as else "user")
                 for turn in example.turns[-self.config.context_turns :]]
        respond_tag = self.config.speakers.get(self.config.respond_as, self.config.respond_as)
        return PromptSource(self.config.prefix, turns, cut="start", respond_tag=respond_tag)

    def record_input(self, example: DialogueExample) -> list[dict[str, str]]:
        return [{"speaker": turn.speaker, "text": turn.text} for turn in example.turns[-self.config.context_turns :]]

    def metrics(self, hypotheses: list[str], examples: list[DialogueExample],
                likelihood: dict[str, Any]) -> dict[str, Any]:
        from homofit.metrics.generation import corpus_bleu, distinct_n, rouge

        references = [example.references for example in examples]
        bleu = corpus_bleu(hypotheses, references)
        return {
            "perplexity": likelihood["perplexity"],
            "bleu": bleu["score"],
            "rougeL": rouge(hypotheses, references)["rougeL"],
            "distinct_1": distinct_n(hypotheses, 1),
            "distinct_2": distinct_n(hypotheses, 2),
            "bleu_signature": bleu["signature"],
            "reference_tokens": likelihood["tokens"],
        }

    def report_notes(self, report: dict[str, Any]) -> list[str]:
        return [f"perplexity of the reference responses over {report['reference_tokens']} tokens (lower is better)",
                f"BLEU signature  {report['bleu_signature']}"]

    def extra_settings(self) -> dict[str, Any]:
        return {"context_turns": self.config.context_turns, "respond_as": self.config.respond_as,
                "speakers": self.config.speakers, "prefix": self.config.prefix}

    def input_text(self, example: DialogueExample) -> str:
        """The example's input as one string (`homofit debug-data`: duplicates, overlap, blank inputs)."""
        return "\n".join(turn.text for turn in example.turns)
