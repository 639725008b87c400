"""The entity-start relation head, which transformers does not ship. This module imports torch: import it
only to build a model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from homofit.errors import HomofitError


class EntityStartClassifier(torch.nn.Module):
    """Relation classification from the encoder's states at the head and tail start markers, concatenated
    (the "entity start" variant of Baldini Soares et al., 2019, Matching the Blanks).

    A checkpoint is a plain encoder folder, which `AutoModel.from_pretrained` loads as it is, plus
    HEAD_FILE with the linear head: `classifier.weight` [labels, 2 x hidden] and `classifier.bias`.
    """

    HEAD_FILE = "entity_start_head.safetensors"

    def __init__(self, encoder: PreTrainedModel, num_labels: int) -> None:
        super().__init__()
        if getattr(encoder, "pooler", None) is not None:
            # Unused here; without it no parameter goes without a gradient (which DDP would wait for).
            encoder.pooler = None
        self.encoder = encoder
        config = encoder.config
        dropout = getattr(config, "classifier_dropout", None)
        self.dropout = torch.nn.Dropout(getattr(config, "hidden_dropout_prob", 0.1) if dropout is None else dropout)
        self.classifier = torch.nn.Linear(2 * config.hidden_size, num_labels)
        torch.nn.init.normal_(self.classifier.weight, std=getattr(config, "initializer_range", 0.02))
        torch.nn.init.zeros_(self.classifier.bias)

    @property
    def config(self) -> PretrainedConfig:
        return self.encoder.config

    @property
    def base_model(self) -> PreTrainedModel:
        return self.encoder

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.encoder.get_input_embeddings()

    def resize_token_embeddings(self, size: int) -> torch.nn.Module:
        return self.encoder.resize_token_embeddings(size)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, head_start: torch.Tensor,
                tail_start: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> SequenceClassifierOutput:
        inputs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        states = self.encoder(**inputs).last_hidden_state
        rows = torch.arange(states.size(0), device=states.device)
        pair = torch.cat([states[rows, head_start], states[rows, tail_start]], dim=-1)
        return SequenceClassifierOutput(logits=self.classifier(self.dropout(pair)))

    def save_pretrained(self, path: str | Path, safe_serialization: bool = True) -> None:
        from safetensors.torch import save_file

        self.encoder.save_pretrained(path, safe_serialization=safe_serialization)
        head = {name: tensor.detach().contiguous().cpu() for name, tensor in self.classifier.state_dict().items()}
        save_file(head, str(Path(path) / self.HEAD_FILE))

    @classmethod
    def from_pretrained(cls, path: str, config: PretrainedConfig) -> EntityStartClassifier:
        """The encoder and head of a checkpoint written by `save_pretrained`."""
        from safetensors.torch import load_file
        from transformers import AutoModel

        from homofit.model import load_pretrained

        head_file = Path(path) / cls.HEAD_FILE
        if not head_file.is_file():
            raise HomofitError(f"{path}: no {cls.HEAD_FILE}; this checkpoint has no entity-start head "
                               "(was it trained with task.head: pooled?).")
        model = cls(load_pretrained(AutoModel, path, config), config.num_labels)
        model.classifier.load_state_dict(load_file(str(head_file)))
        return model
