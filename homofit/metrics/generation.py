"""Scores for generated text: sacreBLEU and chrF, ROUGE (rouge-score), distinct-n and perplexity.

Overlap scores (BLEU, chrF, ROUGE) are on sacreBLEU's 0-100 scale; distinct-n is a ratio in [0, 1].
"""

from __future__ import annotations

import math
import re
from typing import Any

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _reference_streams(references: list[list[str]]) -> list[list[str | None]]:
    """sacreBLEU's layout: one stream per reference position; a shorter list is padded with None."""
    width = max((len(refs) for refs in references), default=1)
    return [[refs[position] if position < len(refs) else None for refs in references] for position in range(width)]


def corpus_bleu(hypotheses: list[str], references: list[list[str]]) -> dict[str, Any]:
    """Corpus BLEU as sacreBLEU computes it by default (13a tokens, mixed case, exponential smoothing)."""
    from sacrebleu.metrics import BLEU

    metric = BLEU()
    result = metric.corpus_score(hypotheses, _reference_streams(references))
    return {
        "score": float(result.score),
        "signature": str(metric.get_signature()),
        "precisions": [float(precision) for precision in result.precisions],
        "brevity_penalty": float(result.bp),
        "hypothesis_length": int(result.sys_len),
        "reference_length": int(result.ref_len),
    }


def corpus_chrf(hypotheses: list[str], references: list[list[str]]) -> dict[str, Any]:
    """chrF (character 6-grams, beta 2) as sacreBLEU computes it by default."""
    from sacrebleu.metrics import CHRF

    metric = CHRF()
    result = metric.corpus_score(hypotheses, _reference_streams(references))
    return {"score": float(result.score), "signature": str(metric.get_signature())}


def split_sentences(text: str) -> str:
    """One sentence a line, as ROUGE-Lsum reads summaries: split after ., ! or ? followed by white space."""
    return "\n".join(sentence for sentence in SENTENCE_END.split(text.strip()) if sentence)


def rouge(hypotheses: list[str], references: list[list[str]]) -> dict[str, float]:
    """Mean ROUGE-1/2/L/Lsum F1 (stemmed) over examples; with several references, each example takes the best."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for hypothesis, refs in zip(hypotheses, references):
        scores = scorer.score_multi([split_sentences(ref) for ref in refs], split_sentences(hypothesis))
        for rouge_type in ROUGE_TYPES:
            totals[rouge_type] += scores[rouge_type].fmeasure
    count = max(len(hypotheses), 1)
    return {rouge_type: 100.0 * total / count for rouge_type, total in totals.items()}


def words(text: str) -> list[str]:
    """Lowercased word and punctuation tokens, for distinct-n."""
    return WORD.findall(text.lower())


def distinct_n(texts: list[str], n: int) -> float:
    """Distinct n-grams over all n-grams of all texts (Li et al., 2016); 0.0 when there is no n-gram."""
    seen: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        tokens = words(text)
        grams = [tuple(tokens[start : start + n]) for start in range(len(tokens) - n + 1)]
        seen.update(grams)
        total += len(grams)
    return len(seen) / total if total else 0.0


def perplexity(negative_log_likelihood: float, tokens: int) -> float:
    """exp(mean negative log-likelihood per token) over a whole corpus."""
    if tokens == 0:
        return math.nan
    return math.exp(negative_log_likelihood / tokens)
