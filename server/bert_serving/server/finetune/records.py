"""Tokenize examples in a pool of processes into sharded TFRecord files, reused when data and settings repeat.

Workers (``tokenize_worker``, fresh interpreters) run only the tokenizer, no TensorFlow: each returns the ids
of its chunks of examples, and the parent writes each chunk as one shard, so shards in order hold the
examples in input order.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from ..model.features import FeatureBuilder
from ..model.tokenization import FullTokenizer
from .data import InputExample

MAX_CHUNK_ROWS = 2048  # examples per shard (and per task of the pool)
MIN_ROWS_FOR_POOL = 1000  # fewer are tokenized here: starting processes would take longer


@dataclass(frozen=True)
class TokenizerSettings:
    """What the ids depend on besides the texts."""
    vocab_path: str
    do_lower_case: bool
    max_seq_len: int
    model_max_len: int

    def fingerprint(self) -> str:
        with open(self.vocab_path, 'rb') as f:
            vocab = hashlib.sha256(f.read()).hexdigest()
        return f'{vocab}:{self.do_lower_case}:{self.max_seq_len}:{self.model_max_len}'

    def builder(self) -> FeatureBuilder:
        return FeatureBuilder(FullTokenizer(self.vocab_path, self.do_lower_case), self.max_seq_len,
                              self.model_max_len)


def tokenize_chunk(builder: FeatureBuilder, rows: list[tuple[tuple[str, ...], int, float]]) -> list[bytes]:
    """Serialized tf.train.Example of each (segments, label id, weight) row."""
    features = builder.build_segments([segments for segments, _, _ in rows])
    lengths = features.input_mask.sum(axis=1)
    return [encode_example(ids[:length], type_ids[:length], label_id, weight)
            for ids, type_ids, length, (_, label_id, weight)
            in zip(features.input_ids.tolist(), features.input_type_ids.tolist(), lengths, rows)]


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


_SMALL_VARINTS = [_varint(n) for n in range(1 << 16)]  # token ids: one table look-up each


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _int64_feature(values) -> bytes:
    packed = b''.join(_SMALL_VARINTS[v] if v < 65536 else _varint(v) for v in values)
    return _field(3, _field(1, packed))  # Feature.int64_list(3) -> Int64List.value(1), packed


def encode_example(input_ids, input_type_ids, label_id: int, weight: float) -> bytes:
    """The bytes of tf.train.Example(input_ids, input_type_ids, label_id, weight), written without TensorFlow."""
    features = {'input_ids': _int64_feature(input_ids), 'input_type_ids': _int64_feature(input_type_ids),
                'label_id': _int64_feature([label_id & 0xFFFFFFFFFFFFFFFF]),  # int64: -1 as two's complement
                'weight': _field(2, _field(1, struct.pack('<f', weight)))}  # Feature.float_list(2)
    entries = b''.join(_field(1, _field(1, key.encode()) + _field(2, value)) for key, value in features.items())
    return _field(1, entries)  # Example.features(1) -> Features.feature(1): map entries (key 1, value 2)


def _chunks(examples, size):
    return [examples[start:start + size] for start in range(0, len(examples), size)]


def write_records(examples: list[InputExample], labels: list[str], settings: TokenizerSettings, out_dir: str,
                  num_workers: int) -> list[str]:
    """Shard files holding ``examples`` (written unless a finished set for the same input is in ``out_dir``)."""
    key = _fingerprint(examples, labels, settings)
    folder = os.path.join(out_dir, key[:16])
    done = os.path.join(folder, 'done.json')
    if os.path.isfile(done):
        with open(done, encoding='utf-8') as f:
            return [os.path.join(folder, name) for name in json.load(f)['shards']]
    os.makedirs(folder, exist_ok=True)
    label_ids = {label: n for n, label in enumerate(labels)}
    # at least four tasks per worker, so that a slow chunk does not leave the others idle
    chunks = _chunks(examples, max(64, min(MAX_CHUNK_ROWS, -(-len(examples) // (4 * num_workers)))))
    shards = []
    rows = [[(e.segments, label_ids.get(e.label, -1), e.weight) for e in chunk] for chunk in chunks]
    workers = num_workers if len(examples) >= MIN_ROWS_FOR_POOL else 1
    for n, serialized in enumerate(tokenized_chunks(rows, settings, workers)):
        shards.append(f'part-{n:05d}.tfrecord')
        _write_shard(os.path.join(folder, shards[-1]), serialized)
    with open(done + '.tmp', 'w', encoding='utf-8') as f:
        json.dump({'shards': shards, 'examples': len(examples)}, f)
    os.replace(done + '.tmp', done)
    return [os.path.join(folder, name) for name in shards]


def tokenized_chunks(chunks: list, settings: TokenizerSettings, num_workers: int):
    """tokenize_chunk of each chunk, in order; chunk k goes to worker k % num_workers."""
    workers = min(num_workers, len(chunks))
    if workers <= 1:
        builder = settings.builder()
        yield from (tokenize_chunk(builder, rows) for rows in chunks)
        return
    with tempfile.TemporaryDirectory(prefix='bert-tokenize-') as scratch:
        processes = []
        for w in range(workers):
            task = os.path.join(scratch, f'task-{w}.pickle')
            with open(task, 'wb') as f:
                pickle.dump((settings, chunks[w::workers]), f, protocol=pickle.HIGHEST_PROTOCOL)
            processes.append(subprocess.Popen([sys.executable, '-m', f'{__package__}.tokenize_worker', task],
                                              stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        try:
            for k in range(len(chunks)):
                yield _next_result(processes[k % workers])
        finally:
            for process in processes:
                process.kill()
                process.wait()


def _next_result(process):
    try:
        return pickle.load(process.stdout)
    except EOFError:
        process.wait()
        error = process.stderr.read().decode(errors='replace').strip().splitlines()
        raise RuntimeError(f'a tokenizing worker failed (exit status {process.returncode}): '
                           f'{error[-1] if error else "no message"}') from None


def _fingerprint(examples, labels, settings) -> str:
    digest = hashlib.sha256(settings.fingerprint().encode())
    digest.update(json.dumps(labels).encode())
    for e in examples:
        digest.update(json.dumps([e.segments, e.label, e.weight]).encode())
    return digest.hexdigest()


def _write_shard(path, serialized):
    from ..model.tensorflow_quiet import tf
    with tf.io.TFRecordWriter(path + '.tmp') as writer:
        for record in serialized:
            writer.write(record)
    os.replace(path + '.tmp', path)


def read_records(shards: list[str]):
    """A tf.data.Dataset of dicts (input_ids, input_type_ids, input_mask, label_id, weight), in shard order."""
    from ..model.tensorflow_quiet import tf
    spec = {'input_ids': tf.io.VarLenFeature(tf.int64), 'input_type_ids': tf.io.VarLenFeature(tf.int64),
            'label_id': tf.io.FixedLenFeature([], tf.int64), 'weight': tf.io.FixedLenFeature([], tf.float32)}

    def parse(record):
        parsed = tf.io.parse_single_example(record, spec)
        ids = tf.cast(tf.sparse.to_dense(parsed['input_ids']), tf.int32)
        return {'input_ids': ids, 'input_mask': tf.ones_like(ids),
                'input_type_ids': tf.cast(tf.sparse.to_dense(parsed['input_type_ids']), tf.int32),
                'label_id': tf.cast(parsed['label_id'], tf.int32), 'weight': parsed['weight']}

    return tf.data.TFRecordDataset(shards).map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
