"""BERT hyper-parameters, read from a Google ``bert_config.json`` or a Hugging Face ``config.json``."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

_REQUIRED = ('vocab_size', 'hidden_size', 'num_hidden_layers', 'num_attention_heads', 'intermediate_size')


@dataclass(frozen=True)
class BertConfig:
    """The shape of a BERT model; the fields the forward pass needs and nothing else."""
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    hidden_act: str = 'gelu'
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f'hidden_size {self.hidden_size} is not a multiple of '
                             f'num_attention_heads {self.num_attention_heads}')

    @classmethod
    def from_json_file(cls, path) -> 'BertConfig':
        """Read either config flavour; a missing required key raises ValueError naming the file and the key."""
        with open(path, encoding='utf-8') as f:
            try:
                raw = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f'{path}: not valid JSON ({e})') from None
        if not isinstance(raw, dict):
            raise ValueError(f'{path}: expected a JSON object with the BERT hyper-parameters')
        missing = [k for k in _REQUIRED if k not in raw]
        if missing:
            raise ValueError(f'{path}: missing required key(s) {", ".join(missing)}')
        known = {f.name for f in fields(cls)}
        # HF configs carry many unrelated keys (dropout, model_type, ...); keep only ours.
        values = {k: v for k, v in raw.items() if k in known}
        try:
            return cls(**values)
        except (TypeError, ValueError) as e:
            raise ValueError(f'{path}: {e}') from None

    def to_dict(self) -> dict:
        """The fields as a plain dict (JSON-serialisable)."""
        return asdict(self)
