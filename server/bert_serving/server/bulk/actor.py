"""The encoder actor of the Ray Data pipeline: the server worker's SentenceEncoder, one part per call."""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass

from ..model.strategy import PoolingStrategy
from .parts import write_part


@dataclass(frozen=True)
class EncoderConfig:
    """What ``worker.load_encoder`` reads: the same fields as the server's WorkerConfig."""
    graph_path: str
    vocab_path: str
    max_seq_len: int | None
    do_lower_case: bool
    add_special_tokens: bool
    pooling_strategy: PoolingStrategy
    model_max_len: int
    xla: bool
    gpu_id: int | None
    gpu_memory_fraction: float
    fixed_embed_length: bool = False
    max_batch_tokens: int | None = None  # None: the device's default, as for a server
    max_segments: int = 2  # 3 for a classifier, as its server reads a ||| b ||| c


@dataclass(frozen=True)
class ShippedModel:
    """The frozen graph and the vocabulary as object-store references: actors need no shared disk."""
    graph_ref: object
    vocab_ref: object
    settings: dict  # EncoderConfig's fields other than the paths and the device


class PartEncoder:
    """Loads the frozen graph once; each call encodes the parts of a batch and writes them to the output."""

    def __init__(self, model: ShippedModel, output_dir: str, batch_size: int, with_text: bool, gpus: float):
        import ray

        from ..logger import set_logger
        from ..worker import load_encoder

        self.folder = tempfile.TemporaryDirectory(prefix='bert-bulk-')
        paths = {}
        for field, ref in (('graph_path', model.graph_ref), ('vocab_path', model.vocab_ref)):
            paths[field] = os.path.join(self.folder.name, field)
            with open(paths[field], 'wb') as f:
                f.write(ray.get(ref))
        _limit_threads(ray.get_runtime_context().get_assigned_resources().get('CPU', 1))
        config = EncoderConfig(**paths, **model.settings, gpu_id=0 if gpus else None,
                               gpu_memory_fraction=min(1.0, gpus) * 0.9)
        self.encoder = load_encoder(config, _quiet(set_logger('BULK')))
        self.dim = self.encoder.encode(['size of the vectors'])[0].shape[1]
        self.output_dir, self.batch_size, self.with_text = output_dir, batch_size, with_text
        self.where = {'node': ray.get_runtime_context().get_node_id(), 'pid': os.getpid()}

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        done = {'name': [], 'rows': [], 'skipped': [], 'node': []}
        for name, ids, texts, info in zip(batch['name'], batch['ids'], batch['texts'], batch['info']):
            ids, texts, info = list(ids), list(texts), {**json.loads(info), **self.where}
            vectors = np.empty((len(texts), self.dim), np.float32)
            for start in range(0, len(texts), self.batch_size):
                vectors[start:start + self.batch_size] = self.encoder.encode(texts[start:start + self.batch_size])[0]
            write_part(self.output_dir, name, ids, texts if self.with_text else None, vectors, info)
            for key, value in (('name', name), ('rows', len(ids)), ('skipped', len(info['skipped'])),
                               ('node', self.where['node'])):
                done[key].append(value)
        return done


def _limit_threads(cpus: float) -> None:
    """As many TensorFlow threads as CPUs Ray gave the actor (shared by the encoder's passes that run at once),
    so actors sharing a machine do not fight."""
    from ..model.chunking import CPU_CONCURRENT_PASSES, threads_per_pass
    from ..model.tensorflow_quiet import tf

    threads = max(1, int(cpus))
    tf.config.threading.set_intra_op_parallelism_threads(threads_per_pass(threads, CPU_CONCURRENT_PASSES))
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def _quiet(logger):
    """The actor's logger says only what goes wrong: one line per actor start would flood a big cluster."""
    logger.setLevel('WARNING')
    return logger
