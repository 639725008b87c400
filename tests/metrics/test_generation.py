"""homofit.metrics.generation against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from homofit.metrics.generation import corpus_bleu, corpus_chrf, distinct_n, perplexity, rouge, split_sentences


def test_bleu_is_the_geometric_mean_of_the_ngram_precisions() -> None:
    # 1- to 4-gram precisions 4/5, 3/4, 2/3, 1/2; same length, so no brevity penalty: (0.2) ** (1/4)
    result = corpus_bleu(["a b c d e"], [["a b c d f"]])
    assert result["score"] == pytest.approx(100 * 0.2 ** 0.25, abs=1e-4)
    assert result["precisions"] == pytest.approx([80.0, 75.0, 200 / 3, 50.0])
    assert result["brevity_penalty"] == 1.0
    assert result["signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")


def test_bleu_brevity_penalty() -> None:
    # a 4-word hypothesis against a 5-word reference: every n-gram matches, BP = exp(1 - 5/4)
    assert corpus_bleu(["a b c d"], [["a b c d e"]])["score"] == pytest.approx(100 * math.exp(-0.25), abs=1e-4)


def test_bleu_with_several_and_uneven_references() -> None:
    result = corpus_bleu(["a b c d e", "a b c d f"], [["a b c d f", "a b c d e"], ["a b c d f"]])
    assert result["score"] == pytest.approx(100.0)
    assert "nrefs:var" in result["signature"]


def test_chrf_averages_precision_and_recall_over_the_orders_present() -> None:
    # "abc" vs "abd": 1-grams 2/3 match, 2-grams 1/2, 3-grams 0/1, no 4- to 6-grams;
    # precision = recall = (2/3 + 1/2 + 0) / 3 = 7/18, so F = 7/18
    result = corpus_chrf(["abc"], [["abd"]])
    assert result["score"] == pytest.approx(100 * 7 / 18, abs=1e-4)
    assert result["signature"].startswith("nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no")


def test_rouge_by_hand() -> None:
    # 5 of 6 unigrams shared; bigrams: 3 of 5 ("the cat", "on the", "the mat"); LCS "the cat on the mat" = 5
    scores = rouge(["the cat sat on the mat"], [["the cat was on the mat"]])
    assert scores["rouge1"] == pytest.approx(100 * 5 / 6)
    assert scores["rouge2"] == pytest.approx(100 * 3 / 5)
    assert scores["rougeL"] == pytest.approx(100 * 5 / 6)


def test_rouge_stems_and_takes_the_best_reference() -> None:
    scores = rouge(["Cats running"], [["a dog sleeps", "the cat runs"]])
    # stemmed: cat run vs the cat run -> P 2/2, R 2/3, F 0.8; the first reference shares nothing
    assert scores["rouge1"] == pytest.approx(80.0)


def test_rouge_lsum_matches_sentence_by_sentence() -> None:
    # swapped sentences: one LCS over the whole text finds 3 of 6 tokens; sentence-level union LCS finds all 6
    scores = rouge(["the cat sat. the dog ran."], [["the dog ran. the cat sat."]])
    assert scores["rougeL"] == pytest.approx(50.0)
    assert scores["rougeLsum"] == pytest.approx(100.0)
    assert split_sentences("One. Two? Three!  Four") == "One.\nTwo?\nThree!\nFour"


def test_rouge_averages_over_examples() -> None:
    scores = rouge(["a b", "x"], [["a b"], ["y"]])
    assert scores["rouge1"] == pytest.approx(50.0)


def test_distinct_n() -> None:
    texts = ["a b a", "A c"]  # unigrams a b a a c: 3 distinct of 5; bigrams (a b) (b a) (a c): 3 of 3
    assert distinct_n(texts, 1) == pytest.approx(3 / 5)
    assert distinct_n(texts, 2) == pytest.approx(1.0)
    assert distinct_n(["hi"], 2) == 0.0
    assert distinct_n(["ok, ok."], 1) == pytest.approx(3 / 4)  # punctuation is a token: ok , ok .


def test_perplexity_is_exp_of_the_mean_nll() -> None:
    assert perplexity(2 * math.log(4.0), 2) == pytest.approx(4.0)
    assert math.isnan(perplexity(0.0, 0))
