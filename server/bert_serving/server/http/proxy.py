"""What the blueprints share: the proxy's config, its server pool, metrics and logger, kept on the app."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, current_app

if TYPE_CHECKING:
    from .config import HttpConfig
    from .metrics import Metrics
    from .pool import ServerPool

EXTENSION = 'bert_serving_proxy'


@dataclass
class Proxy:
    """The state of one proxy app; blueprints reach it with ``current_proxy()``."""
    config: HttpConfig
    server: ServerPool
    metrics: Metrics
    logger: logging.Logger

    def install(self, app: Flask) -> None:
        app.extensions[EXTENSION] = self

    def encode(self, texts, is_tokenized: bool = False):
        """(embeddings as float32 ndarray, number of tokens) for valid texts, counted in the metrics."""
        embeddings, num_tokens, source = self.server.encode(texts, is_tokenized)
        self.metrics.sentences.inc(len(texts))
        self.metrics.tokens.labels(source).inc(num_tokens)
        return embeddings, num_tokens


def current_proxy() -> Proxy:
    """The ``Proxy`` of the app handling the current request."""
    return current_app.extensions[EXTENSION]
