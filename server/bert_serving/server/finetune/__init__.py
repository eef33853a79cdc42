"""Fine-tune, evaluate and predict with a BERT text classifier on TensorFlow 2 (``bert-serving-finetune``).

``BertClassifier``, ``FinetuneOptions``, ``InputExample``, ``DataProcessor`` and ``TsvProcessor`` are
imported on first use, so that the preprocessing workers (which import this package) do not load TensorFlow.
"""

_EXPORTS = {'BertClassifier': 'classifier', 'FinetuneOptions': 'classifier', 'InputExample': 'data',
            'DataProcessor': 'data', 'TsvProcessor': 'data', 'average_checkpoints': 'average'}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    import importlib
    return getattr(importlib.import_module(f'.{_EXPORTS[name]}', __name__), name)
