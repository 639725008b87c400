"""Split a SQuAD file by article into train.json and eval.json (SQuAD format), and write the split down.

The first N articles (in file order) go to train, the rest to eval; no article is in both, so no
paragraph seen in training is asked about again in evaluation.

    python scripts/split_squad.py                      # ../shared/data/squad_v1.1 -> runs/squad_split
    python scripts/split_squad.py --source FILE --out DIR --train-articles 40
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path


def split_articles(document: dict, train_articles: int) -> dict[str, dict]:
    articles = document["data"]
    if not 0 < train_articles < len(articles):
        raise SystemExit(f"--train-articles must be between 1 and {len(articles) - 1}; "
                         f"the file has {len(articles)} articles.")
    version = document.get("version", "1.1")
    return {"train": {"version": version, "data": articles[:train_articles]},
            "eval": {"version": version, "data": articles[train_articles:]}}


def describe(split: dict) -> dict:
    articles = split["data"]
    return {"articles": [article["title"] for article in articles],
            "paragraphs": sum(len(article["paragraphs"]) for article in articles),
            "questions": sum(len(paragraph["qas"]) for article in articles for paragraph in article["paragraphs"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("../shared/data/squad_v1.1/dev-v1.1.json"))
    parser.add_argument("--out", type=Path, default=Path("runs/squad_split"))
    parser.add_argument("--train-articles", type=int, default=40)
    args = parser.parse_args()

    raw = args.source.read_bytes()
    splits = split_articles(json.loads(raw), args.train_articles)
    args.out.mkdir(parents=True, exist_ok=True)
    record = {"source": str(args.source), "source_sha256": hashlib.sha256(raw).hexdigest(),
              "rule": f"first {args.train_articles} articles in file order -> train, the rest -> eval"}
    for name, split in splits.items():
        (args.out / f"{name}.json").write_text(json.dumps(split, ensure_ascii=False) + "\n", encoding="utf-8")
        record[name] = describe(split)
    (args.out / "split.json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for name in splits:
        print(f"{args.out / (name + '.json')}: {len(record[name]['articles'])} articles, "
              f"{record[name]['paragraphs']} paragraphs, {record[name]['questions']} questions")


if __name__ == "__main__":
    main()
