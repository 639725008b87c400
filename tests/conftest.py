"""Shared fixtures: a tiny random BERT built from a config and a tokenizer from the shipped vocab."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parent.parent


@pytest.fixture(scope="session", autouse=True)
def _session_feature_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The feature cache of module- and session-scoped runs: never the user's ~/.cache."""
    import os

    os.environ["HOMOFIT_CACHE_DIR"] = str(tmp_path_factory.mktemp("feature-cache"))


@pytest.fixture(autouse=True)
def _feature_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty feature cache for each test (subprocesses inherit it), so no test sees another's."""
    folder = tmp_path_factory.mktemp("feature-cache")
    monkeypatch.setenv("HOMOFIT_CACHE_DIR", str(folder))
    return folder


def build_tiny_bert(folder: Path, seed: int = 0) -> Path:
    """A 2-layer, 32-wide random BERT with the shipped 343-token vocab: runs take seconds on a CPU."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=sum(1 for _ in (DATA / "vocab.txt").open()), hidden_size=32,
                        num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=128)
    BertModel(config).save_pretrained(folder, safe_serialization=True)
    shutil.copy(DATA / "vocab.txt", folder / "vocab.txt")
    tokenizer_config = {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 128}
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    return folder


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a tiny random BERT folder that AutoModel*/AutoTokenizer load like any hub model."""
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_bert: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_bert)
