"""A worker's batch reaches the sink as one message, and the sink answers every request in it.

Sent part by part, the first answers brought their clients back to the ventilator before the worker's DONE,
and ReturnWait counted them twice (see batching.ReturnWait): one message per batch keeps DONE ahead of them.
"""
import logging
import os
import threading

import numpy as np
import zmq

from bert_serving.server import protocol
from bert_serving.server.batching import PendingPart
from bert_serving.server.model.checkpoint import locate_model
from bert_serving.server.model.encoder import SentenceEncoder
from bert_serving.server.model.graph import GraphOptions, build_frozen_graph
from bert_serving.server.model.strategy import PoolingStrategy
from bert_serving.server.sink import Sink
from bert_serving.server.worker import Worker, WorkerConfig

REQUESTS = {b'alice': ['the quick brown fox', 'lazy dog'], b'bob': ['hello world'], b'carol': ['good day', 'a', 'x']}


def cpu_worker(model_dir, graph_path, to_sink) -> Worker:
    """A Worker as a worker process runs it, sending to ``to_sink``."""
    vocab = locate_model(model_dir).vocab_path
    config = WorkerConfig(worker_id=0, gpu_id=None, graph_path=graph_path, vocab_path=vocab, ventilator_address='',
                          sink_address='', parent_pid=os.getpid(), max_seq_len=16, do_lower_case=True,
                          add_special_tokens=True, pooling_strategy=PoolingStrategy.REDUCE_MEAN, model_max_len=64,
                          fixed_embed_length=False, xla=False, gpu_memory_fraction=0.5, show_tokens=False,
                          verbose=False)
    encoder = SentenceEncoder(graph_path, vocab, 16, model_max_len=64)
    return Worker(config, encoder, to_sink, logging.getLogger('test'))


def test_a_batch_reaches_the_sink_in_one_message_and_every_client_gets_its_rows(tiny_model_dirs, tmp_path):
    graph = build_frozen_graph(locate_model(tiny_model_dirs['hf']), GraphOptions(), str(tmp_path))
    context = zmq.Context()
    to_sink, sink_in = context.socket(zmq.PUSH), context.socket(zmq.PULL)
    sink_in.bind('inproc://sink-in')
    to_sink.connect('inproc://sink-in')
    publisher = context.socket(zmq.XPUB)
    publisher.setsockopt(zmq.XPUB_VERBOSE, 1)
    publisher.bind('inproc://sink-out')
    clients = {}
    for identity in REQUESTS:
        clients[identity] = context.socket(zmq.SUB)
        clients[identity].setsockopt(zmq.SUBSCRIBE, identity)
        clients[identity].connect('inproc://sink-out')
    try:
        parts = [PendingPart(job, 0, texts, False) for job, texts in enumerate(REQUESTS.values(), start=1)]
        worker = cpu_worker(tiny_model_dirs['hf'], graph, to_sink)
        worker.run_batch(parts)
        message = sink_in.recv_multipart()  # read before the sink runs, then handed to it
        assert not sink_in.poll(200), 'the batch came in more than one message'
        assert message[0] == protocol.RESULT and len(message) == 1 + 4 * len(parts)

        sink = threading.Thread(target=Sink(sink_in, publisher, logging.getLogger('test')).serve, args=(os.getppid(),))
        sink.start()
        for job, (identity, texts) in enumerate(REQUESTS.items(), start=1):
            to_sink.send_multipart([protocol.REGISTER, b'%d' % job, identity, b'%d' % job, b'%d' % len(texts)])
        to_sink.send_multipart(message)
        for identity, texts in REQUESTS.items():
            assert clients[identity].poll(10_000), f'no answer for {identity}'
            reply = clients[identity].recv_multipart()
            array, _ = protocol.decode_array(reply[1], reply[2])
            np.testing.assert_allclose(array, worker.encoder.encode(texts)[0], atol=1e-6)
        to_sink.send_multipart([protocol.STOP])
        sink.join(10)
        assert not sink.is_alive()
    finally:
        context.destroy(linger=0)
