"""This machine's float32 matmul rate as TensorFlow runs it, in a process of its own (ratio 10's yardstick).

    python benchmarks/matmul_peak.py SIZE THREADS AT_ONCE

Runs ``AT_ONCE`` ``SIZE x SIZE`` matmuls at the same time, each on a Python thread, with ``THREADS`` intra-op
threads (0: TensorFlow's default, one per core). Each input line is a request: it times three rounds and
prints the best as ``{"gflops": ...}``. A process of its own, so that the serving code's thread settings in the
caller's process (one intra-op thread per forward pass) do not change the yardstick.
"""
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


def main(argv=None) -> None:
    size, threads, at_once = map(int, (argv or sys.argv[1:])[:3])
    from bert_serving.server.model.tensorflow_quiet import tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    with tf.device('/CPU:0'):
        pairs = [(tf.random.normal((size, size)), tf.random.normal((size, size))) for _ in range(at_once)]
    pool = ThreadPoolExecutor(at_once)

    def round_seconds() -> float:
        start = time.perf_counter()
        list(pool.map(lambda pair: tf.matmul(*pair).numpy(), pairs))
        return time.perf_counter() - start

    round_seconds()  # warm up
    for _ in sys.stdin:
        best = min(round_seconds() for _ in range(3))
        print(json.dumps({'gflops': at_once * 2 * size ** 3 / best / 1e9}), flush=True)


if __name__ == '__main__':
    main()
