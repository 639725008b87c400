"""Tag schemes: IOB1 and BIOES to IOB2, the one scheme homofit trains and scores with."""

from __future__ import annotations

from dataclasses import dataclass

SCHEMES = ("IOB1", "IOB2", "BIOES")


@dataclass(frozen=True)
class Span:
    """An entity over words [start, end) with its type."""

    start: int
    end: int
    label: str


def _split_tag(tag: str) -> tuple[str, str]:
    if tag == "O":
        return "O", ""
    prefix, sep, entity_type = tag.partition("-")
    if not sep or prefix not in {"B", "I", "E", "S"} or not entity_type:
        raise ValueError(f"tag '{tag}' is not O or PREFIX-TYPE with PREFIX one of B, I, E, S")
    return prefix, entity_type


def to_iob2(tags: list[str], scheme: str) -> list[str]:
    """Convert one sentence's tags from `scheme` to IOB2. Raises ValueError on a tag the scheme lacks."""
    allowed = {"IOB1": {"B", "I"}, "IOB2": {"B", "I"}, "BIOES": {"B", "I", "E", "S"}}[scheme]
    converted = []
    previous_type = ""
    for tag in tags:
        prefix, entity_type = _split_tag(tag)
        if prefix != "O" and prefix not in allowed:
            raise ValueError(f"tag '{tag}' is not valid {scheme} (prefixes {'/'.join(sorted(allowed))} only)")
        if prefix == "O":
            converted.append("O")
        elif prefix in {"B", "S"}:
            converted.append(f"B-{entity_type}")
        elif scheme == "IOB1" and previous_type != entity_type:
            # IOB1 starts an entity with I- unless it directly follows one of the same type.
            converted.append(f"B-{entity_type}")
        else:
            converted.append(f"I-{entity_type}")
        previous_type = "" if prefix in {"O", "E", "S"} else entity_type
    return converted


def spans_from_iob2(tags: list[str]) -> list[Span]:
    """Entities in a strict IOB2 reading (as seqeval's strict mode): an I- without its B- starts nothing."""
    spans = []
    start, entity_type = -1, ""
    for index, tag in enumerate([*tags, "O"]):
        prefix, current_type = ("O", "") if tag == "O" else tag.split("-", 1)
        continues = prefix == "I" and current_type == entity_type and start >= 0
        if start >= 0 and not continues:
            spans.append(Span(start, index, entity_type))
            start, entity_type = -1, ""
        if prefix == "B":
            start, entity_type = index, current_type
    return spans
