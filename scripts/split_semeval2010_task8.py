"""Hold out the last sentences of SemEval-2010 Task 8's TRAIN_FILE.TXT as dev: train.txt and dev.txt, unchanged.

The release has train (8,000 sentences) and test (2,717) only. The first N sentences (in file order, ids
1..N) go to train.txt, the rest to dev.txt, each block (sentence, label, comment, blank line) copied byte
for byte in the release format that homofit's relation task reads. split.json records the counts, the
first and last id of each part and the files' sha256.

The release's README says its last 891 sentences (7,110-8,000) come from SemEval-2007 Task 4, with labels
skewed towards five of the relations and harder "Other" sentences: the default dev set (the last 800) is
drawn from them, so it scores well below the test set. It still picks the best epoch fairly.

    python scripts/split_semeval2010_task8.py    # ../shared/data/semeval2010_task8 -> runs/semeval2010_task8_split
    python scripts/split_semeval2010_task8.py --source FILE --out DIR --train-sentences 7200
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from pathlib import Path

SENTENCE_LINE = re.compile(rb'^(\d+)\t"')


def blocks(data: bytes) -> list[tuple[str, bytes]]:
    """(sentence id, the block's bytes) for each sentence; a block runs up to the next sentence line."""
    lines = data.splitlines(keepends=True)
    starts = [index for index, line in enumerate(lines) if SENTENCE_LINE.match(line)]
    return [(SENTENCE_LINE.match(lines[start]).group(1).decode(), b"".join(lines[start:end]))
            for start, end in zip(starts, [*starts[1:], len(lines)])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("../shared/data/semeval2010_task8/TRAIN_FILE.TXT"),
                        help="The release's TRAIN_FILE.TXT (8,000 sentences).")
    parser.add_argument("--out", type=Path, default=Path("runs/semeval2010_task8_split"))
    parser.add_argument("--train-sentences", type=int, default=7200,
                        help="The first N sentences train; the rest (by default the last 800) are dev.")
    args = parser.parse_args()

    sentences = blocks(args.source.read_bytes())
    if not 0 < args.train_sentences < len(sentences):
        raise SystemExit(f"--train-sentences must be between 1 and {len(sentences) - 1}; "
                         f"the file has {len(sentences)}.")
    parts = {"train": sentences[: args.train_sentences], "dev": sentences[args.train_sentences :]}
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {"source": str(args.source), "source_sha256": hashlib.sha256(args.source.read_bytes()).hexdigest()}
    for name, part in parts.items():
        content = b"".join(block for _, block in part)
        (args.out / f"{name}.txt").write_bytes(content)
        summary[name] = {"file": str(args.out / f"{name}.txt"), "sentences": len(part), "first_id": part[0][0],
                         "last_id": part[-1][0], "sha256": hashlib.sha256(content).hexdigest()}
    (args.out / "split.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    for name in parts:
        print(f"{name}: {summary[name]['sentences']} sentences (ids {summary[name]['first_id']}.."
              f"{summary[name]['last_id']}) -> {summary[name]['file']}")


if __name__ == "__main__":
    main()
