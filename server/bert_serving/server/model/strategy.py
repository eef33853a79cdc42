"""Pooling strategies (pure Python: the CLI parser imports this module without TensorFlow)."""
from enum import Enum


class PoolingStrategy(Enum):
    """How token vectors become one sentence vector. CLS_TOKEN and SEP_TOKEN are aliases."""
    NONE = 0
    REDUCE_MAX = 1
    REDUCE_MEAN = 2
    REDUCE_MEAN_MAX = 3
    FIRST_TOKEN = 4
    LAST_TOKEN = 5
    CLS_TOKEN = 4
    SEP_TOKEN = 5
    CLS_POOLED = 6

    def __str__(self):
        return self.name

    @classmethod
    def from_string(cls, name: str) -> 'PoolingStrategy':
        """Case-insensitive lookup, aliases included; ValueError lists the valid names."""
        try:
            return cls.__members__[str(name).upper()]
        except KeyError:
            raise ValueError(f'unknown pooling strategy {name!r}; valid: '
                             f'{", ".join(cls.__members__)}') from None
