"""One client over two servers vs one server with two workers, and the latency the multi-server client adds.

    python benchmarks/multi_server.py -model_dir models/minilm

Starts three servers: one with two workers on 127.0.0.1, and two with one worker each on 127.0.0.2 and
127.0.0.3, on the same ports as pods would be. Every timing is the best of -repeat runs, both sides in turn.

1. rows/s of one ``BertClient(ip=[the two one-worker servers])`` that sends -num_sentences in requests of
   -client_batch rows before fetching them all, vs a plain ``BertClient`` doing the same to the two-worker
   server (goal >= 0.9x: spreading costs nothing); the vectors of both sides must be equal within 1e-5.
2. p50 latency of a one-sentence encode through that multi-server client vs a plain client of one of
   the one-worker servers (goal <= +1 ms). Each of the two servers then sees every other request of the
   multi-server client, the plain client's server every one: the difference includes how much faster a
   server answers when it has just been busy.
3. The same with the multi-server client over a list of that one server: the client's own cost alone.
"""
from __future__ import annotations

import argparse
import os
import sys
from functools import partial

import numpy as np
from bert_serving.client import BertClient
from common import Row, best_seconds, latencies_ms, load_average, natural_sentences, percentile, report, start_server, \
    take

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # before TensorFlow loads: keep the report readable
ONE_WORKER_HOSTS = ('127.0.0.2', '127.0.0.3')


def start_servers(args):
    """The two-worker server, and the two one-worker servers on the same ports of two other addresses."""
    from bert_serving.server.benchmark import free_port, start_side_by_side

    options = ('-max_seq_len', args.max_seq_len)
    ports = (free_port(), free_port())
    servers = start_side_by_side([partial(start_server, args.model_dir, *options, num_worker=2)] + [
        partial(start_server, args.model_dir, *options, bind=host, ports=ports) for host in ONE_WORKER_HOSTS])
    return servers[0], servers[1:]


def multi_client(one_worker_servers):
    """One client over all the one-worker servers (same ports, so each is just its address)."""
    first = one_worker_servers[0].args
    return BertClient(ip=[server.ip for server in one_worker_servers], port=first.port, port_out=first.port_out,
                      timeout=600_000, ignore_all_checks=True)


def throughput(args, two_workers, one_worker_servers) -> Row:
    """1: rows/s of one client over two one-worker servers vs over one two-worker server."""
    sentences = take(natural_sentences(), args.num_sentences)
    batches = [sentences[i:i + args.client_batch] for i in range(0, len(sentences), args.client_batch)]
    vectors = {}

    def pass_of(client, side):
        def send_all_then_fetch():
            for batch in batches:
                client.encode(batch, blocking=False)
            vectors[side] = client.fetch_all(concat=True)
        return send_all_then_fetch

    with multi_client(one_worker_servers) as multi, two_workers.client() as plain:
        for client in (multi, plain):
            client.encode(batches[0])  # warm up
        multi_s, plain_s = best_seconds([pass_of(multi, 'multi'), pass_of(plain, 'plain')], args.repeat)
    difference = float(np.abs(vectors['multi'] - vectors['plain']).max())
    ratio = plain_s / multi_s
    return Row(f'1 one client over 2 servers x 1 worker vs 1 server x 2 workers: {len(sentences)} sentences, '
               f'client batch {args.client_batch}, max_seq_len {args.max_seq_len}',
               f'{len(sentences) / multi_s:.0f} rows/s', f'{len(sentences) / plain_s:.0f} rows/s',
               f'{ratio:.2f}x (max difference {difference:.1e})', '>= 0.90, equal within 1e-5',
               ratio >= 0.9 and difference <= 1e-5)


def latency(args, name, multi_servers, plain_server) -> Row:
    """One-sentence latency through a client over ``multi_servers`` vs a plain client of ``plain_server``."""
    items = [[sentence] for sentence in take(natural_sentences(), args.latency_requests)]
    with multi_client(multi_servers) as multi, plain_server.client() as plain:
        for client in (multi, plain):
            client.encode(items[0])  # warm up
        multi_ms, plain_ms = latencies_ms([multi.encode, plain.encode], items)
    extra = percentile(multi_ms, 50) - percentile(plain_ms, 50)
    return Row(f'{name} ({len(items)} requests, idle servers)',
               f'multi-server p50 {percentile(multi_ms, 50):.2f} ms, p99 {percentile(multi_ms, 99):.2f} ms',
               f'plain p50 {percentile(plain_ms, 50):.2f} ms, p99 {percentile(plain_ms, 99):.2f} ms',
               f'{extra:+.2f} ms at p50', '<= +1 ms at p50', extra <= 1)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('-model_dir', default='models/minilm', help='model folder')
    parser.add_argument('-repeat', type=int, default=3, help='runs per timing; the best one counts')
    parser.add_argument('-num_sentences', type=int, default=4096, help='sentences of the throughput pass')
    parser.add_argument('-client_batch', type=int, default=64, help='sentences per request of that pass')
    parser.add_argument('-max_seq_len', type=int, default=64, help='max_seq_len of the servers')
    parser.add_argument('-latency_requests', type=int, default=200, help='one-sentence requests timed per side')
    parser.add_argument('-output_json', default=None, help='also write the rows as JSON')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    load_before = load_average()
    two_workers, one_worker_servers = start_servers(args)
    try:
        first = one_worker_servers[0]
        rows = [throughput(args, two_workers, one_worker_servers),
                latency(args, '2 latency of one sentence, client over 2 servers vs plain client of 1',
                        one_worker_servers, first),
                latency(args, '3 latency of one sentence, client over a list of 1 server vs plain client of it',
                        [first], first)]
    finally:
        for server in (two_workers, *one_worker_servers):
            server.stop()
    report(rows, load_before, args.output_json)
    return 0


if __name__ == '__main__':
    sys.exit(main())
