"""Schema-Guided Dialogue files -> homofit's dialogue JSONL, one line per response.

    python scripts/convert_sgd.py ../shared/data/sgd/train train.jsonl [--respond-as SYSTEM] [--context-turns N]

Each turn by --respond-as that follows another turn becomes {"id", "turns": [{"speaker", "text"}, ...],
"response"}, with every earlier turn of its dialogue (or the last N), which is what `task.type: dialogue`
reads from JSONL. homofit also reads the SGD files directly; the JSONL is for editing, filtering or sharing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def convert(source: Path, out: Path, respond_as: str, context_turns: int | None) -> int:
    from homofit.data.dialogue import read_sgd, response_examples

    examples = response_examples(read_sgd(source), respond_as)
    with out.open("w", encoding="utf-8") as handle:
        for context, response, origin in examples:
            kept = context[-context_turns:] if context_turns else context
            record = {"id": origin.split("#", 1)[-1], "turns": [{"speaker": t.speaker, "text": t.text} for t in kept],
                      "response": response.text}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return len(examples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="An SGD split folder or one dialogues_*.json file.")
    parser.add_argument("out", type=Path, help="The JSONL file to write (must not exist).")
    parser.add_argument("--respond-as", default="SYSTEM", help="The speaker whose turns are the responses.")
    parser.add_argument("--context-turns", type=int, help="Keep only the last N turns of each context.")
    args = parser.parse_args()
    if args.out.exists():
        raise SystemExit(f"convert_sgd.py: {args.out} already exists; choose a new file.")
    count = convert(args.source, args.out, args.respond_as, args.context_turns)
    print(f"wrote {count} responses to {args.out}")


if __name__ == "__main__":
    main()
