"""The model side of a task, by kind of output: a label per token, a label per sequence, a span, and (in
homofit.generation) a language model. A head adapter builds the backbone with its head (or grows a trained
head for labels new to it), pads features into batches, computes the loss as (sum, units), turns outputs into
per-row predictions on the CPU, and names the head modules that train in full under LoRA.

A task picks one adapter and may pass it what differs (class weights, extra inputs such as the entity-start
positions); the adapter never reads data or scores predictions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from homofit.data.windows import IGNORE_INDEX
from homofit.errors import HomofitError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from homofit.config import ModelConfig

Batch = dict[str, "torch.Tensor"]


def pad_inputs(features: list[dict], tokenizer: PreTrainedTokenizerBase) -> Batch:
    """input_ids and attention_mask padded on the right to the longest feature, token_type_ids too when the
    features carry them."""
    width = max(len(feature["input_ids"]) for feature in features)
    batch = {"input_ids": _right_padded([feature["input_ids"] for feature in features], width,
                                        tokenizer.pad_token_id or 0)}
    batch["attention_mask"] = _right_padded([[1] * len(feature["input_ids"]) for feature in features], width, 0)
    if "token_type_ids" in features[0]:
        batch["token_type_ids"] = _right_padded([feature["token_type_ids"] for feature in features], width, 0)
    return batch


def _right_padded(rows: list[Any], width: int, value: int) -> torch.Tensor:
    import torch

    padded = torch.full((len(rows), width), value, dtype=torch.long)
    for row, ids in enumerate(rows):
        padded[row, : len(ids)] = torch.as_tensor(ids, dtype=torch.long)
    return padded


class Head:
    """What every adapter shares: the forward pass without the label keys, loss and predictions from one
    pass (`evaluate`), and the head modules LoRA trains whole. Subclasses set `auto_class` and `label_keys`
    and implement `collate`, `loss_of` and `rows_of`."""

    auto_class: ClassVar[str] = ""  # the transformers Auto class that adds this head
    label_keys: ClassVar[tuple[str, ...]] = ("labels",)

    def build(self, model_path: str, model_config: ModelConfig, labels: list[str], from_checkpoint: bool,
              **config_overrides: Any) -> PreTrainedModel:
        """The backbone with this head: a new head sized for `labels`, or a checkpoint's trained head grown by
        rows for labels new to it."""
        import transformers

        from homofit.model import load_backbone_config, load_pretrained

        if labels and not from_checkpoint:
            id2label = dict(enumerate(labels))
            config_overrides |= {"id2label": id2label, "label2id": {label: index for index, label in id2label.items()}}
        config = load_backbone_config(model_path, model_config, **config_overrides)
        model = load_pretrained(getattr(transformers, self.auto_class), model_path, config)
        if labels and len(labels) > model.config.num_labels:
            grow_head(model, labels)
        return model

    def inputs(self, batch: Batch) -> Batch:
        return {key: value for key, value in batch.items() if key not in self.label_keys}

    def has_labels(self, batch: Batch) -> bool:
        return all(key in batch for key in self.label_keys)

    def loss(self, model: PreTrainedModel, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        return self.loss_of(model(**self.inputs(batch)), batch)

    def evaluate(self, model: PreTrainedModel, batch: Batch) -> tuple[list[Any], Any]:
        outputs = model(**self.inputs(batch))
        loss = self.loss_of(outputs, batch) if self.has_labels(batch) else None
        return self.rows_of(outputs, batch), loss

    def trainable_modules(self, model: PreTrainedModel) -> list[str]:
        """The modules that are the task head: the model's own children that hold parameters, less the
        backbone (a sequence classifier's pooler is the backbone's, and freeze: all_but_head frees it)."""
        backbone = model.base_model
        return [name for name, child in model.named_children()
                if child is not backbone and any(True for _ in child.parameters())]

    def collate(self, features: list[dict], tokenizer: PreTrainedTokenizerBase) -> Batch:
        raise NotImplementedError

    def loss_of(self, outputs: Any, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def rows_of(self, outputs: Any, batch: Batch) -> list[Any]:
        raise NotImplementedError


class TokenLabelHead(Head):
    """A label per token (NER): features carry `labels` aligned to `input_ids`, IGNORE_INDEX where no label
    is scored; the loss is cross-entropy summed over the labelled tokens; a row is (label ids, probabilities)."""

    auto_class = "AutoModelForTokenClassification"

    def collate(self, features: list[dict], tokenizer: PreTrainedTokenizerBase) -> Batch:
        batch = pad_inputs(features, tokenizer)
        if "labels" in features[0]:
            batch["labels"] = _right_padded([feature["labels"] for feature in features], batch["input_ids"].shape[1],
                                            IGNORE_INDEX)
        return batch

    def loss_of(self, outputs: Any, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        from homofit.losses import summed_cross_entropy

        return summed_cross_entropy(outputs.logits, batch["labels"])

    def rows_of(self, outputs: Any, batch: Batch) -> list[Any]:
        best = outputs.logits.float().softmax(dim=-1).max(dim=-1)
        return list(zip(best.indices.cpu().numpy(), best.values.cpu().numpy()))


class SequenceLabelHead(Head):
    """A label per sequence (classification, pooled relation): softmax and cross-entropy summed over the
    examples, each weighted by its class weight; or, multi-label, a sigmoid per label and binary cross-entropy
    summed over every (example, label) pair. A row is the probabilities of every label. `extra_inputs` are
    per-feature integers the model reads beside the tokens (the entity-start head's marker positions)."""

    auto_class = "AutoModelForSequenceClassification"

    def __init__(self, multi_label: bool = False, label_count: int = 0, class_weights: list[float] | None = None,
                 extra_inputs: tuple[str, ...] = ()) -> None:
        self.multi_label = multi_label
        self.label_count = label_count  # multi-label: the width of a row of labels
        self.class_weights = class_weights
        self.extra_inputs = extra_inputs

    def build(self, model_path: str, model_config: ModelConfig, labels: list[str], from_checkpoint: bool,
              **config_overrides: Any) -> PreTrainedModel:
        if self.multi_label and not from_checkpoint:
            config_overrides.setdefault("problem_type", "multi_label_classification")
        elif not from_checkpoint:
            config_overrides.setdefault("problem_type", "single_label_classification")
        return super().build(model_path, model_config, labels, from_checkpoint, **config_overrides)

    def collate(self, features: list[dict], tokenizer: PreTrainedTokenizerBase) -> Batch:
        import torch

        batch = pad_inputs(features, tokenizer)
        for key in self.extra_inputs:
            batch[key] = torch.tensor([feature[key] for feature in features], dtype=torch.long)
        if "labels" in features[0]:
            if self.multi_label:
                labels = torch.zeros((len(features), self.label_count), dtype=torch.float)
                for row, feature in enumerate(features):
                    labels[row, feature["labels"]] = 1.0
            else:
                labels = torch.tensor([feature["labels"] for feature in features], dtype=torch.long)
            batch["labels"] = labels
        return batch

    def loss_of(self, outputs: Any, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        from homofit.losses import summed_cross_entropy

        logits = outputs.logits.float()
        weights = None
        if self.class_weights is not None:
            weights = torch.tensor(self.class_weights, dtype=torch.float, device=logits.device)
        if self.multi_label:
            total = torch.nn.functional.binary_cross_entropy_with_logits(logits, batch["labels"], pos_weight=weights,
                                                                         reduction="sum")
            return total, torch.tensor(batch["labels"].numel(), device=logits.device)
        return summed_cross_entropy(logits, batch["labels"], weights)

    def rows_of(self, outputs: Any, batch: Batch) -> list[Any]:
        logits = outputs.logits.float()
        probabilities = logits.sigmoid() if self.multi_label else logits.softmax(dim=-1)
        return list(probabilities.cpu().numpy())


class EntityStartHead(SequenceLabelHead):
    """A relation label from the states at the head's and the tail's start markers (EntityStartClassifier)."""

    def __init__(self) -> None:
        super().__init__(extra_inputs=("head_start", "tail_start"))

    def build(self, model_path: str, model_config: ModelConfig, labels: list[str], from_checkpoint: bool,
              **config_overrides: Any) -> PreTrainedModel:
        from transformers import AutoModel

        from homofit.entity_start import EntityStartClassifier
        from homofit.model import load_backbone_config, load_pretrained

        if not from_checkpoint:
            id2label = dict(enumerate(labels))
            config_overrides |= {"id2label": id2label, "label2id": {label: index for index, label in id2label.items()}}
        config = load_backbone_config(model_path, model_config, **config_overrides)
        if from_checkpoint:
            model = EntityStartClassifier.from_pretrained(model_path, config)
        else:
            model = EntityStartClassifier(load_pretrained(AutoModel, model_path, config), len(labels))
        if len(labels) > model.config.num_labels:
            grow_head(model, labels)
        return model

    def inputs(self, batch: Batch) -> Batch:
        return {key: batch[key] for key in ("input_ids", "attention_mask", *self.extra_inputs)}

    def trainable_modules(self, model: PreTrainedModel) -> list[str]:
        return ["classifier"]


class SpanHead(Head):
    """A span of the input (extractive QA): start and end logits; the loss is the mean of the start and end
    cross-entropies summed over windows, positions past the window ignored (as transformers' QA heads); a row
    is the (start, end) logits over the window's real tokens."""

    auto_class = "AutoModelForQuestionAnswering"
    label_keys = ("start_positions", "end_positions")

    def collate(self, features: list[dict], tokenizer: PreTrainedTokenizerBase) -> Batch:
        import torch

        batch = pad_inputs(features, tokenizer)
        if self.label_keys[0] in features[0]:
            for key in self.label_keys:
                batch[key] = torch.tensor([feature[key] for feature in features], dtype=torch.long)
        return batch

    def loss_of(self, outputs: Any, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        ignored = outputs.start_logits.size(1)
        starts = batch["start_positions"].clamp(0, ignored)
        ends = batch["end_positions"].clamp(0, ignored)
        cross_entropy = torch.nn.functional.cross_entropy
        total = (cross_entropy(outputs.start_logits.float(), starts, ignore_index=ignored, reduction="sum")
                 + cross_entropy(outputs.end_logits.float(), ends, ignore_index=ignored, reduction="sum")) / 2
        return total, (starts != ignored).sum()

    def rows_of(self, outputs: Any, batch: Batch) -> list[Any]:
        lengths = batch["attention_mask"].sum(dim=1).tolist()
        starts = outputs.start_logits.float().cpu().numpy()
        ends = outputs.end_logits.float().cpu().numpy()
        return [(start[:length], end[:length]) for start, end, length in zip(starts, ends, lengths)]


def grow_head(model: PreTrainedModel, labels: list[str]) -> None:
    """Give the output layer rows for labels new to it, keeping the trained rows of the old ones. The output
    layer is the last Linear of the task head with one output per old label (classifier, score, or a
    classification head's out_proj)."""
    import torch

    old_count = model.config.num_labels
    backbone = {id(module) for module in model.base_model.modules()}
    layer_name = next((name for name, module in reversed(list(model.named_modules()))
                       if isinstance(module, torch.nn.Linear) and module.out_features == old_count
                       and id(module) not in backbone), None)
    if layer_name is None:
        raise HomofitError(f"model.name_or_path: {type(model).__name__} has no output layer with one output per "
                           f"label ({old_count}), so labels new to the checkpoint cannot be added; train on the "
                           "checkpoint's labels, or start from the pretrained model.")
    parent_name, _, attribute = layer_name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old: torch.nn.Linear = getattr(parent, attribute)
    new = torch.nn.Linear(old.in_features, len(labels), bias=old.bias is not None)
    std = getattr(model.config, "initializer_range", 0.02)
    with torch.no_grad():
        new.weight.normal_(0.0, std)
        new.weight[: old.out_features] = old.weight
        if old.bias is not None:
            new.bias.zero_()
            new.bias[: old.out_features] = old.bias
    setattr(parent, attribute, new.to(old.weight.device, old.weight.dtype))
    model.config.num_labels = len(labels)
    if hasattr(model, "num_labels"):  # heads read their own copy when reshaping logits for the loss
        model.num_labels = len(labels)
    model.config.id2label = dict(enumerate(labels))
    model.config.label2id = {label: index for index, label in enumerate(labels)}
