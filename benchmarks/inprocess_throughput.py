"""In-process SentenceEncoder throughput on MiniLM: the golden sentences repeated to ~4096, in batches of 256.

Prints the graph build time (what a server spends before its workers start), the encoder load time,
sentences per second (best of -repeat passes, the least disturbed by other programs on a shared machine) and
sentences per CPU-second, then the figures as one JSON line.

    python benchmarks/inprocess_throughput.py [-model_dir DIR] [-max_seq_len 25] [-batch_size 256] [-xla] [-fp16]
"""
import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

GOLDEN_SENTENCES = Path(__file__).resolve().parents[1] / 'tests' / 'data' / 'golden' / 'dev_sentences.txt'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('-model_dir', help='BERT folder (default: the packaged MiniLM, prepared in a temp dir)')
    parser.add_argument('-sentences', default=str(GOLDEN_SENTENCES), help='one sentence per line')
    parser.add_argument('-num_sentences', type=int, default=4096)
    parser.add_argument('-max_seq_len', type=int, default=25)
    parser.add_argument('-batch_size', type=int, default=256)
    parser.add_argument('-pooling_strategy', default='REDUCE_MEAN')
    parser.add_argument('-repeat', type=int, default=3, help='timed passes over all sentences; the best is kept')
    parser.add_argument('-xla', action='store_true')
    parser.add_argument('-fp16', action='store_true')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    work = tempfile.mkdtemp(prefix='bert-bench-')
    try:
        result = measure(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))


def measure(args, work) -> dict:
    from bert_serving.server.model.checkpoint import locate_model
    from bert_serving.server.model.chunking import CPU_CONCURRENT_PASSES
    from bert_serving.server.model.encoder import SentenceEncoder
    from bert_serving.server.model.graph import GraphOptions, build_frozen_graph, share_cores_between_passes
    from bert_serving.server.model.packaged import prepare_model
    from bert_serving.server.model.strategy import PoolingStrategy

    share_cores_between_passes(CPU_CONCURRENT_PASSES)  # before the graph is built: threads as a worker's
    model_dir = args.model_dir or prepare_model(os.path.join(work, 'minilm'))
    files = locate_model(model_dir)
    strategy = PoolingStrategy.from_string(args.pooling_strategy)

    start = time.perf_counter()
    graph_path = build_frozen_graph(files, GraphOptions(pooling_strategy=strategy, fp16=args.fp16), work)
    build_s = time.perf_counter() - start

    start = time.perf_counter()
    encoder = SentenceEncoder(graph_path, files.vocab_path, args.max_seq_len, pooling_strategy=strategy, xla=args.xla)
    load_s = time.perf_counter() - start

    lines = [line for line in Path(args.sentences).read_text(encoding='utf-8').splitlines() if line.strip()]
    texts = [lines[i % len(lines)] for i in range(args.num_sentences)]
    batches = [texts[i:i + args.batch_size] for i in range(0, len(texts), args.batch_size)]

    def one_pass():
        for batch in batches:
            encoder.encode(batch)

    start = time.perf_counter()
    one_pass()  # warm-up: the runtime specialises the graph for each input shape once
    warmup_s = time.perf_counter() - start
    best, best_cpu = float('inf'), float('inf')
    for _ in range(args.repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        one_pass()
        best, best_cpu = min(best, time.perf_counter() - start), min(best_cpu, time.process_time() - start_cpu)

    with open('/proc/loadavg') as f:
        load = ' / '.join(f.read().split()[:3])
    result = {'model_dir': str(model_dir), 'layout': files.layout, 'max_seq_len': args.max_seq_len,
              'batch_size': args.batch_size, 'num_sentences': len(texts), 'pooling_strategy': str(strategy),
              'xla': args.xla, 'fp16': args.fp16, 'graph_build_s': round(build_s, 2),
              'encoder_load_s': round(load_s, 2), 'warmup_pass_s': round(warmup_s, 2),
              'best_pass_s': round(best, 3), 'sentences_per_s': round(len(texts) / best, 1),
              'best_pass_cpu_s': round(best_cpu, 3), 'sentences_per_cpu_s': round(len(texts) / best_cpu, 1),
              'cpu_count': os.cpu_count(), 'load_average_1_5_15': load}
    print(f'graph build: {build_s:.2f} s   encoder load: {load_s:.2f} s   warm-up pass: {warmup_s:.2f} s')
    print(f'throughput: {len(texts) / best:.1f} sentences/s ({len(texts)} sentences, batch {args.batch_size}, '
          f'max_seq_len {args.max_seq_len}, best of {args.repeat}; load average {load} on {os.cpu_count()} CPUs)')
    # CPU seconds of all this process's threads: steadier than wall time when other programs share the machine.
    print(f'CPU time: {len(texts) / best_cpu:.1f} sentences per CPU-second')
    return result


if __name__ == '__main__':
    main()
