"""The ratios of issues 7 and 13 measured in one run and printed side by side with their goals.

    python benchmarks/ratios.py -model_dir models/minilm              # 1-10 and the tokenizer
    python benchmarks/ratios.py overhead latency -model_dir models/minilm
    python benchmarks/ratios.py gpu -model_dir models/minilm          # BERT-Base, random weights, on GPU 0

Every timing is the best of -repeat runs (the least disturbed one on a shared machine). Ratios 1, 2, 4,
5 and 6 share one server with one worker; the in-process side runs the same frozen graph in this process.
Ratios 7 and 8 (HTTP vs ZeroMQ) share another one with its HTTP proxy.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path

import numpy as np
from bert_serving.server.model.chunking import CPU_CONCURRENT_PASSES
from common import (BENCH_PYTHON, BENCH_SETUP, HttpEncoder, Row, ScriptSession, best_seconds, build_graph,
                    in_process_encoder, latencies_ms, load_average, natural_sentences, percentile, print_report,
                    run_json, start_server, take)

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # before TensorFlow loads: keep the report readable
MIB = 1 << 20
SEED_M40_BASE_SEQ40 = 473  # sentences/s of the seed's published benchmark (SPEC 7)


def chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


class Bench:
    """What several ratios share, made on first use: sentences, the in-process encoder, the server."""

    def __init__(self, args):
        from bert_serving.server.model.graph import share_cores_between_passes

        share_cores_between_passes(CPU_CONCURRENT_PASSES)  # before the graph is built: threads as a worker's
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix='bert-bench-'))
        self._client = None
        self.service_vectors = None

    @cached_property
    def natural(self) -> list[str]:
        return natural_sentences()

    @cached_property
    def sentences(self) -> list[str]:
        return take(self.natural, self.args.num_sentences)

    @cached_property
    def graph(self) -> str:
        return build_graph(self.args.model_dir, self.tmp)

    @cached_property
    def encoder(self):
        return in_process_encoder(self.graph, self.args.model_dir, self.args.max_seq_len)

    @cached_property
    def server(self):
        return start_server(self.args.model_dir, '-max_seq_len', self.args.max_seq_len)

    @cached_property
    def http_server(self):
        """A server like ``server`` with its HTTP proxy on a free port."""
        from bert_serving.server.benchmark import free_port

        return start_server(self.args.model_dir, '-max_seq_len', self.args.max_seq_len, '-http_port', free_port())

    def service_pass(self) -> None:
        """BertClient.encode over all the sentences in client batches; keeps the vectors."""
        if self._client is None:
            self._client = self.server.client()
            self._client.encode(self.sentences[:self.args.client_batch])  # warm up
        self.service_vectors = np.concatenate([self._client.encode(b)
                                               for b in chunks(self.sentences, self.args.client_batch)])

    def time_service_and(self, other) -> tuple[float, float]:
        """Best seconds of ``service_pass`` and of ``other``, timed in turn."""
        service_seconds, other_seconds = best_seconds([self.service_pass, other], self.args.repeat)
        return service_seconds, other_seconds

    def write_json(self, name: str, value) -> Path:
        path = self.tmp / name
        path.write_text(json.dumps(value), encoding='utf-8')
        return path

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        for name in ('server', 'http_server'):
            if name in self.__dict__:
                getattr(self, name).stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def overhead(bench: Bench) -> Row:
    """1: end-to-end BertClient.encode vs the same graph in-process at batch 256."""
    args, n = bench.args, len(bench.sentences)
    batches = chunks(bench.sentences, args.batch)
    bench.encoder.encode(batches[0])
    service_s, local_s = bench.time_service_and(lambda: [bench.encoder.encode(b) for b in batches])
    ratio = local_s / service_s
    return Row(f'1 service overhead: {n} sentences, client batch {args.client_batch}, max_seq_len '
               f'{args.max_seq_len}, 1 worker, vs in-process at batch {args.batch}',
               f'{n / service_s:.0f} sentences/s', f'{n / local_s:.0f} sentences/s', f'{ratio:.2f}', '>= 0.90',
               ratio >= 0.90)


def small_clients(bench: Bench) -> Row:
    """2: many clients of one sentence per request vs one client of big batches."""
    from bert_serving.server.benchmark import measure_throughput

    args, server = bench.args, bench.server
    sentences = bench.sentences[:args.small_sentences]
    one_each = [[[s] for s in sentences[i::args.small_clients]] for i in range(args.small_clients)]
    one_big = [chunks(sentences[:args.batch], args.batch) + chunks(sentences, args.batch)]
    before = server.statistic()
    small = [measure_throughput(server, one_each).sentences_per_s]
    after = server.statistic()
    big = [measure_throughput(server, one_big).sentences_per_s]
    for _ in range(args.repeat - 1):  # in turn, as best_seconds does
        small.append(measure_throughput(server, one_each).sentences_per_s)
        big.append(measure_throughput(server, one_big).sentences_per_s)
    small, big = max(small), max(big)
    rows_per_pass = (after['num_total_seq'] - before['num_total_seq']) / (
        after['num_forward_pass'] - before['num_forward_pass'])
    ratio = small / big
    return Row(f'2 many small clients: {args.small_clients} clients x 1 sentence per request vs 1 client x '
               f'{args.batch}', f'{small:.0f} sentences/s ({rows_per_pass:.1f} rows per forward pass)',
               f'{big:.0f} sentences/s', f'{ratio:.2f}', '>= 0.50', ratio >= 0.50)


def natural_text(bench: Bench) -> Row:
    """3: length-aware batches vs every sentence padded to max_seq_len, on natural mixed-length sentences."""
    args = bench.args
    length = args.natural_max_seq_len
    encoder = in_process_encoder(bench.graph, args.model_dir, length)
    batches = chunks(bench.natural[:args.natural_sentences], args.batch)

    def aware():
        return np.concatenate([encoder.encode(b)[0] for b in batches])

    def padded_pass(texts):
        features = encoder.features.build(texts, pad_to=length)
        return encoder.runner.run(features.input_ids, features.input_mask, features.input_type_ids)

    def padded():
        return np.concatenate([vectors for batch in batches
                               for vectors in halves.map(padded_pass, chunks(batch, -(-len(batch) // 2)))])

    with ThreadPoolExecutor(CPU_CONCURRENT_PASSES) as halves:  # each batch's halves at once, as the encoder's passes
        difference = float(np.abs(aware() - padded()).max())  # also warms both up
        aware_s, padded_s = best_seconds([aware, padded], args.repeat)
    n = sum(map(len, batches))
    tokens = np.mean([len(t) for t in encoder.features.tokenize(bench.natural[:args.natural_sentences])])
    ratio = padded_s / aware_s
    return Row(f'3 natural text: {n} sentences ({tokens:.1f} tokens on average), max_seq_len {length}, '
               f'length-aware vs padded to {length}', f'{n / aware_s:.0f} sentences/s',
               f'{n / padded_s:.0f} sentences/s', f'{ratio:.2f} (max difference {difference:.1e})',
               '>= 2.5, equal within 1e-5', ratio >= 2.5 and difference <= 1e-5)


def torch_alternative(bench: Bench) -> Row:
    """4: our service end to end vs in-process PyTorch transformers (in .venv-bench)."""
    from bert_serving.server.model.checkpoint import locate_model

    args, n = bench.args, len(bench.sentences)
    name = (f'4 vs PyTorch transformers in-process: {n} sentences, max_seq_len {args.max_seq_len}, batch '
            f'{args.batch}, mean of layer -2')
    if not BENCH_PYTHON.exists():
        return Row(name, 'not run', f'no .venv-bench: {BENCH_SETUP}', '', '>= 1.0', None)
    if locate_model(args.model_dir).layout != 'hf':
        return Row(name, 'not run', 'transformers needs a Hugging Face model folder', '', '>= 1.0', None)
    vectors = bench.tmp / 'torch.npy'
    session = ScriptSession(BENCH_PYTHON, 'torch_encode.py', '-model_dir', args.model_dir, '-sentences_file',
                            bench.write_json('sentences.json', bench.sentences), '-max_seq_len', args.max_seq_len,
                            '-batch', args.batch, '-layer', -2, '-vectors_out', vectors)
    try:
        info = session.read()  # loaded and warmed up
        service_s, torch_s = bench.time_service_and(lambda: session.ask('run'))
    finally:
        session.close()
    difference = float(np.abs(np.load(vectors) - bench.service_vectors).max())
    ratio = torch_s / service_s
    return Row(name, f'{n / service_s:.0f} sentences/s',
               f'{n / torch_s:.0f} sentences/s (torch {info["torch"]}, {info["threads"]} threads)',
               f'{ratio:.2f} (max difference {difference:.1e})', '>= 1.0', ratio >= 1.0)


def latency(bench: Bench) -> Row:
    """5: one-sentence encode on an idle server vs one in-process forward."""
    args = bench.args
    items = [[s] for s in bench.sentences[:args.latency_requests]]
    with bench.server.client() as client:
        client.encode(items[0])
        bench.encoder.encode(items[0])
        service, local = latencies_ms([client.encode, bench.encoder.encode], items)
    extra = percentile(service, 50) - percentile(local, 50)
    return Row(f'5 latency of one sentence ({len(items)} requests, idle server)',
               f'p50 {percentile(service, 50):.1f} ms, p99 {percentile(service, 99):.1f} ms',
               f'in-process p50 {percentile(local, 50):.1f} ms, p99 {percentile(local, 99):.1f} ms',
               f'{extra:+.1f} ms at p50', '<= +3 ms at p50', extra <= 3)


def memory(bench: Bench) -> Row:
    """6: resident memory of all the server's processes with 1 and more workers, next to the weights."""
    from bert_serving.server.model.checkpoint import expected_shapes, load_config, locate_model

    args = bench.args
    weights = sum(4 * int(np.prod(s)) for s in
                  expected_shapes(load_config(locate_model(args.model_dir))).values()) / MIB
    figures = []
    for workers in args.memory_workers:
        server = bench.server if workers == 1 else start_server(args.model_dir, '-max_seq_len', args.max_seq_len,
                                                                num_worker=workers)
        try:
            with server.client() as client:  # a batch for every worker, so each has run a full-size one
                client.encode(take(bench.sentences, args.batch * workers))
            used = server.memory()
        finally:
            if server is not bench.server:
                server.stop()
        figures.append(f'{workers} worker(s): RSS {used["rss"] / MIB:.0f} MiB, PSS {used["pss"] / MIB:.0f} MiB '
                       f'in {used["processes"]} processes')
    return Row('6 memory of the whole server', '; '.join(figures), f'float32 weights {weights:.1f} MiB', '',
               'report', None)


HTTP_PATHS = ('/encode', '/v1/embeddings')


def _http_vs_zeromq(bench: Bench, requests, label: str, goal: float) -> list[Row]:
    """Each HTTP path vs BertClient on the same server, with the same requests, measured in turn."""
    from bert_serving.server.benchmark import measure_throughput

    server = bench.http_server
    sides = [None] + [lambda path=path: HttpEncoder(server.args.http_port, path) for path in HTTP_PATHS]
    best = [0.0] * len(sides)
    for _ in range(bench.args.repeat):
        for index, connect in enumerate(sides):
            best[index] = max(best[index], measure_throughput(server, requests, connect).sentences_per_s)
    rows = []
    for path, speed in zip(HTTP_PATHS, best[1:]):
        ratio = speed / best[0]
        rows.append(Row(f'{label}: POST {path} vs BertClient, same server', f'{speed:.0f} sentences/s',
                        f'{best[0]:.0f} sentences/s', f'{ratio:.2f}', f'>= {goal}', ratio >= goal))
    return rows


def http_small_clients(bench: Bench) -> list[Row]:
    """7: the clients of ratio 2 (one sentence per request) over HTTP vs over ZeroMQ."""
    args = bench.args
    sentences = bench.sentences[:args.small_sentences]
    one_each = [[[s] for s in sentences[i::args.small_clients]] for i in range(args.small_clients)]
    return _http_vs_zeromq(bench, one_each, f'7 HTTP, {args.small_clients} clients x 1 sentence per request', 0.8)


def http_big_requests(bench: Bench) -> list[Row]:
    """8: clients of big requests over HTTP vs over ZeroMQ."""
    args = bench.args
    big = [chunks(take(bench.natural[i::args.big_clients], args.batch * (args.big_requests + 1)), args.batch)
           for i in range(args.big_clients)]
    return _http_vs_zeromq(bench, big, f'8 HTTP, {args.big_clients} clients x {args.batch} sentences per request', 0.9)


def token_budget(bench: Bench) -> Row:
    """9: natural text at max_seq_len 128 vs 25 in-process, chunks cut by the token budget; 128 vs unchunked."""
    args = bench.args
    natural = [s for s in bench.natural if len(s.split()) <= args.budget_words][:args.natural_sentences]
    batches = chunks(natural, args.batch)
    long, short = (in_process_encoder(bench.graph, args.model_dir, cap) for cap in (args.natural_max_seq_len, 25))

    def unchunked(batch):  # the whole batch in one forward pass, at its longest sentence
        features = long.features.build(batch)
        return long.runner.run(features.input_ids, features.input_mask, features.input_type_ids)

    difference = max(float(np.abs(long.encode(b)[0] - unchunked(b)).max()) for b in batches)
    short.encode(batches[0])
    sides = [lambda: [long.encode(b) for b in batches], lambda: [short.encode(b) for b in batches]]
    long_s, short_s = best_seconds(sides, args.repeat)
    long_cpu, short_cpu = best_seconds(sides, args.repeat, clock=time.process_time)
    lengths = np.array([len(t) for t in long.features.tokenize(natural)])
    shapes = {(forward.chunk.rows, forward.chunk.width) for b in batches
              for forward in long.plan(np.array([len(t) for t in long.features.tokenize(b)]))}
    work = np.minimum(lengths, 25).sum() / lengths.sum()
    ratio = short_cpu / long_cpu
    n = len(natural)
    return Row(f'9 token budget: {n} natural sentences of <= {args.budget_words} words ({lengths.mean():.1f} tokens '
               f'on average, {(lengths > 25).sum()} over 25), max_seq_len {args.natural_max_seq_len} vs 25, '
               f'-max_batch_tokens {long.max_batch_tokens}, in-process, in CPU seconds (and wall seconds)',
               f'{n / long_cpu:.0f} sentences per CPU second, {n / long_s:.0f} per second ({len(shapes)} input '
               f'shapes)', f'{n / short_cpu:.0f} per CPU second, {n / short_s:.0f} per second (tokens at 25 / at '
               f'128: {work:.2f})', f'{ratio:.2f}, wall {short_s / long_s:.2f} (max difference to unchunked '
               f'{difference:.1e})', '>= 0.83, equal within 1e-5', ratio >= 0.83 and difference <= 1e-5)


def useful_flops(tokens: list[list[str]], model_dir, layers: int) -> float:
    """FLOPs of the encoder's matrix multiplications over the real tokens of each sentence, for ``layers``
    layers: the Q, K, V and output projections and the feed-forward pair, plus Q.K and attention x V."""
    from bert_serving.server.model.checkpoint import load_config, locate_model

    config = load_config(locate_model(model_dir))
    hidden, inner = config.hidden_size, config.intermediate_size
    lengths = np.array([len(t) for t in tokens], dtype=np.float64)
    per_layer = 2 * lengths * (4 * hidden * hidden + 2 * hidden * inner) + 4 * lengths ** 2 * hidden
    return float(layers * per_layer.sum())


class MatmulPeak:
    """This machine's float32 matmul rate, in processes of their own (``matmul_peak.py``): the faster of one
    ``size x size`` matmul on TensorFlow's default threads (the issue's yardstick) and one single-threaded
    matmul per core at once (how the encoder's passes run on a CPU)."""

    def __init__(self, size: int):
        cores = len(os.sched_getaffinity(0))
        self.sessions = [ScriptSession(sys.executable, 'matmul_peak.py', size, 0, 1),
                         ScriptSession(sys.executable, 'matmul_peak.py', size, 1, cores)]

    def gflops(self) -> list[float]:
        """GFLOP/s of each way, measured now, best of three rounds."""
        return [session.ask('time')['gflops'] for session in self.sessions]

    def close(self) -> None:
        for session in self.sessions:
            session.close()


def hardware(bench: Bench) -> Row:
    """10: useful GFLOP/s of big requests through the server at max_seq_len 25 vs this machine's matmul peak."""
    from bert_serving.server.benchmark import measure_throughput
    from bert_serving.server.model.checkpoint import load_config, locate_model

    args = bench.args
    batch = take(bench.natural, args.batch)
    requests = [[batch] * (args.big_requests + 1)] * args.big_clients
    layers = load_config(locate_model(args.model_dir)).num_hidden_layers - 1  # through layer -2, the pooled one
    flops = useful_flops(bench.encoder.features.tokenize(batch), args.model_dir, layers)
    matmul = MatmulPeak(args.matmul_size)
    served, local, peaks = 0.0, 0.0, [0.0, 0.0]
    try:
        for _ in range(args.repeat):
            served = max(served, measure_throughput(bench.server, requests).sentences_per_s)
            peaks = [max(best, now) for best, now in zip(peaks, matmul.gflops())]
            local = max(local, args.batch / best_seconds([lambda: bench.encoder.encode(batch)], 1)[0])
    finally:
        matmul.close()
    peak = max(peaks)
    gflops, local_gflops = (speed / args.batch * flops / 1e9 for speed in (served, local))
    ratio = gflops / peak
    return Row(f'10 distance to the hardware: {args.big_clients} clients x {args.batch} sentences, max_seq_len '
               f'{args.max_seq_len}, useful FLOPs ({layers} layers, real tokens) per second vs a '
               f'{args.matmul_size}x{args.matmul_size} float32 matmul', f'{gflops:.0f} GFLOP/s ({served:.0f} '
               f'sentences/s; in-process {local_gflops:.0f} GFLOP/s)', f'matmul peak {peak:.0f} GFLOP/s (one '
               f'matmul {peaks[0]:.0f}, one per core at once {peaks[1]:.0f})', f'{ratio:.2f}', '>= 0.75',
               ratio >= 0.75)


def tokenizer(bench: Bench) -> Row:
    """Tokenizer speed on one core; HF tokenizers' speed and exactness when .venv-bench has it."""
    from bert_serving.server.model.checkpoint import locate_model

    python = BENCH_PYTHON if BENCH_PYTHON.exists() else sys.executable
    result = run_json(python, 'tokenizer_speed.py', '-vocab', locate_model(bench.args.model_dir).vocab_path,
                      '-sentences_file', bench.write_json('natural.json', bench.natural[:bench.args.natural_sentences]),
                      '-repeat', bench.args.repeat)
    ours = (f'{result["ours_cold_per_s"]:.0f} sentences/s cold cache, {result["ours_warm_per_s"]:.0f} warm '
            f'({result["sentences"]} natural sentences)')
    if result['tokenizers'] is None:
        return Row('tokenizer, one core', ours, f'HF tokenizers not installed ({BENCH_SETUP})', '', 'report', None)
    checked = sum(result['checked'].values())
    wrong = sum(result['mismatch_counts'].values())
    return Row('tokenizer, one core (sentences per CPU second)', ours,
               f'HF tokenizers {result["tokenizers"]}: {result["tokenizers_batch_per_s"]:.0f} sentences/s '
               f'batched, {result["tokenizers_one_by_one_per_s"]:.0f} one by one',
               f'{"identical" if not wrong else f"{wrong} differ"} on {checked} texts', 'report', None)


def gpu(args) -> list[Row]:
    """BERT-Base-sized random weights in Google's layout, served at max_seq_len 40, per -fp16/-xla variant."""
    from bert_serving.server.benchmark import measure_throughput
    from bert_serving.server.model.checkpoint import locate_model, random_weights, write_google_model
    from bert_serving.server.model.config import BertConfig

    with open(locate_model(args.model_dir).vocab_path, encoding='utf-8', newline='\n') as f:
        vocab = f.read().split('\n')
    vocab = vocab[:-1] if vocab[-1] == '' else vocab
    base = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
    tiny = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    size = base if args.size == 'base' else tiny
    config = BertConfig(vocab_size=len(vocab), max_position_embeddings=512, **size)
    model_dir = Path(tempfile.mkdtemp(prefix='bert-base-random-'))
    rows = []
    try:
        write_google_model(model_dir, config, random_weights(config), vocab)
        batch = take(natural_sentences(), args.client_batch)
        for variant in args.variants:
            flags = [] if variant == 'plain' else ['-' + flag for flag in variant.split('+')]
            with start_server(model_dir, '-max_seq_len', 40, '-max_batch_size', args.gpu_max_batch_size, *flags,
                              cpu=args.cpu) as server:
                with server.client() as client:
                    device = client.server_config['device_map']
                speed = measure_throughput(server, [[batch] * (args.num_repeat + 1)] * args.num_client)
            per_s = speed.sentences_per_s
            rows.append(Row(f'BERT-{args.size} (random weights), max_seq_len 40, {variant}, device {device}, '
                            f'{args.num_client} clients x {args.client_batch}', f'{per_s:.0f} sentences/s',
                            f'seed on a Tesla M40: {SEED_M40_BASE_SEQ40}', f'{per_s / SEED_M40_BASE_SEQ40:.1f}x',
                            '>= 10,000 sentences/s on one H100', per_s >= 10_000))
    finally:
        shutil.rmtree(model_dir, ignore_errors=True)
    return rows


RATIOS = {'overhead': overhead, 'small_clients': small_clients, 'natural': natural_text,
          'torch': torch_alternative, 'latency': latency, 'memory': memory, 'http_small': http_small_clients,
          'http_big': http_big_requests, 'budget': token_budget, 'hardware': hardware, 'tokenizer': tokenizer}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('which', nargs='*', metavar='|'.join([*RATIOS, 'gpu']),
                        help='what to measure (default: every ratio and the tokenizer; gpu alone)')
    parser.add_argument('-model_dir', default='models/minilm', help='model folder (Hugging Face layout for torch)')
    parser.add_argument('-repeat', type=int, default=3, help='runs per timing; the best one counts')
    parser.add_argument('-num_sentences', type=int, default=4096, help='sentences of ratios 1 and 4')
    parser.add_argument('-client_batch', type=int, default=2048, help='sentences per BertClient.encode')
    parser.add_argument('-batch', type=int, default=256, help='in-process batch (and the big client\'s)')
    parser.add_argument('-max_seq_len', type=int, default=25)
    parser.add_argument('-small_clients', type=int, default=16, help='clients of ratio 2')
    parser.add_argument('-small_sentences', type=int, default=1024, help='sentences of ratio 2, all clients')
    parser.add_argument('-natural_sentences', type=int, default=1024, help='sentences of ratio 3 and the tokenizer')
    parser.add_argument('-natural_max_seq_len', type=int, default=128)
    parser.add_argument('-latency_requests', type=int, default=200)
    parser.add_argument('-memory_workers', type=int, nargs='+', default=[1, 4])
    parser.add_argument('-big_clients', type=int, default=4, help='clients of ratios 8 and 10, -batch sentences each')
    parser.add_argument('-big_requests', type=int, default=3, help='timed requests per client of ratios 8 and 10')
    parser.add_argument('-budget_words', type=int, default=25,
                        help='ratio 9 takes the natural sentences of at most this many words')
    parser.add_argument('-matmul_size', type=int, default=2048, help='n of the n x n float32 matmul of ratio 10')
    parser.add_argument('-output_json', default=None, help='also write the rows as JSON')
    gpu_options = parser.add_argument_group('gpu')
    gpu_options.add_argument('-size', choices=('base', 'tiny'), default='base', help='tiny: a quick check of the code')
    gpu_options.add_argument('-variants', nargs='+', default=['plain', 'fp16', 'xla', 'fp16+xla'],
                             choices=('plain', 'fp16', 'xla', 'fp16+xla'))
    gpu_options.add_argument('-num_client', type=int, default=4)
    gpu_options.add_argument('-gpu_max_batch_size', type=int, default=512)
    gpu_options.add_argument('-num_repeat', type=int, default=5, help='timed requests per client')
    gpu_options.add_argument('-cpu', action='store_true', help='run the gpu benchmark on the CPU (to test it)')
    args = parser.parse_args(argv)
    args.which = args.which or list(RATIOS)
    unknown = set(args.which) - {*RATIOS, 'gpu'}
    if unknown:
        parser.error(f'unknown benchmark {", ".join(sorted(unknown))}; choose from {", ".join([*RATIOS, "gpu"])}')
    if 'gpu' in args.which and len(args.which) > 1:
        parser.error('gpu runs alone')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    load_before = load_average()
    if args.which == ['gpu']:
        rows = gpu(args)
    else:
        bench = Bench(args)
        try:
            rows = []
            for name in args.which:
                measured = RATIOS[name](bench)
                for row in measured if isinstance(measured, list) else [measured]:
                    rows.append(row)
                    print(f'{row.name}: {row.ours} / {row.baseline}', file=sys.stderr, flush=True)
        finally:
            bench.close()
    load = f'{load_before} before, {load_average()} after'
    print_report(rows, load)
    if args.output_json:
        Path(args.output_json).write_text(json.dumps({'load': load, 'rows': [r.as_dict() for r in rows]}, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
