"""bert-serving-encode against bert-serving-start + BertClient, and 1 against 2 actors, in one run.

    python benchmarks/bulk.py -model_dir models/minilm

The corpus is natural sentences in -num_files text files. Each round runs, in turn: the same rows
through one running server with BertClient batches of 256, and bert-serving-encode with each actor
count of -actors on a local Ray cluster (no -ray_address). The best of -repeat rounds is kept.
Rows/s are steady rates: the server's excludes its start, the command's counts from its first part
written (the manifest's ``last_run``), leaving out the cluster, graph and actor start-up, which the
command's total time (printed too) includes.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Row, load_average, natural_sentences, print_report, start_server, take

BIN = Path(sys.executable).parent
GOAL_VS_SERVER = 0.9


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-model_dir', required=True)
    parser.add_argument('-num_sentences', type=int, default=6000)
    parser.add_argument('-num_files', type=int, default=4)
    parser.add_argument('-max_seq_len', type=int, default=40)
    parser.add_argument('-rows_per_part', type=int, default=500)
    parser.add_argument('-actors', type=int, nargs='+', default=[1, 2], help='actor counts to run')
    parser.add_argument('-repeat', type=int, default=2)
    parser.add_argument('-output_json', default=None)
    return parser.parse_args(argv)


def write_corpus(folder: Path, sentences: list[str], num_files: int) -> None:
    folder.mkdir()
    per_file = -(-len(sentences) // num_files)
    for index in range(num_files):
        rows = sentences[index * per_file:(index + 1) * per_file]
        (folder / f'corpus-{index}.txt').write_text(''.join(f'{row}\n' for row in rows))


def server_rows_per_s(client, sentences: list[str]) -> float:
    start = time.perf_counter()
    for offset in range(0, len(sentences), 256):
        client.encode(sentences[offset:offset + 256])
    return len(sentences) / (time.perf_counter() - start)


def encode_run(args, corpus: Path, output: Path, actors: int) -> dict:
    """One bert-serving-encode run on a local cluster; the manifest's figures plus the command's wall time."""
    shutil.rmtree(output, ignore_errors=True)
    start = time.perf_counter()
    completed = subprocess.run([str(BIN / 'bert-serving-encode'), '-model_dir', args.model_dir, '-input',
                                f'{corpus}/*.txt', '-output_dir', str(output), '-num_workers', str(actors),
                                '-max_seq_len', str(args.max_seq_len), '-rows_per_part', str(args.rows_per_part)],
                               capture_output=True, text=True, env={**os.environ, 'RAY_AUTH_MODE': 'disabled'})
    if completed.returncode != 0:
        raise RuntimeError(f'bert-serving-encode failed:\n{completed.stderr[-3000:]}')
    manifest = json.loads((output / '_manifest.json').read_text())
    return {**manifest['last_run'], 'wall_s': time.perf_counter() - start}


def measure(args, tmp: Path) -> dict:
    sentences = take(natural_sentences(), args.num_sentences)
    write_corpus(tmp / 'corpus', sentences, args.num_files)
    best = {'server': 0.0, **{actors: {'steady_rows_per_s': 0.0} for actors in args.actors}}
    with start_server(args.model_dir, '-max_seq_len', args.max_seq_len) as server, \
            server.client(check_length=False) as client:
        client.encode(sentences[:256])  # warm-up
        for _ in range(args.repeat):
            best['server'] = max(best['server'], server_rows_per_s(client, sentences))
            for actors in args.actors:
                run = encode_run(args, tmp / 'corpus', tmp / 'out', actors)
                if run['steady_rows_per_s'] > best[actors]['steady_rows_per_s']:
                    best[actors] = run
    return best


def report(args, best: dict) -> list[Row]:
    server = best['server']
    most = max(args.actors)
    rows = [Row(f'bert-serving-encode, {most} actors (local cluster) vs bert-serving-start + BertClient(256)',
                f'{best[most]["steady_rows_per_s"]:.0f} rows/s', f'{server:.0f} rows/s',
                f'{best[most]["steady_rows_per_s"] / server:.2f}x', f'>= {GOAL_VS_SERVER}x',
                best[most]['steady_rows_per_s'] / server >= GOAL_VS_SERVER)]
    if len(args.actors) > 1:
        least = min(args.actors)
        ratio = best[most]['steady_rows_per_s'] / best[least]['steady_rows_per_s']
        rows.append(Row(f'bert-serving-encode {most} actors vs {least}',
                        f'{best[most]["steady_rows_per_s"]:.0f} rows/s',
                        f'{best[least]["steady_rows_per_s"]:.0f} rows/s', f'{ratio:.2f}x', 'report', None))
    for actors in args.actors:
        run = best[actors]
        rows.append(Row(f'bert-serving-encode {actors} actors, whole command', f'{run["wall_s"]:.1f} s',
                        f'graph built once: {run["graph_s"]:.1f} s', '—', 'report', None))
    return rows


def main(argv=None) -> None:
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix='bert-bulk-bench-'))
    try:
        best = measure(args, tmp)
        load = load_average()
        rows = report(args, best)
        print(f'{args.num_sentences} sentences in {args.num_files} files, max_seq_len {args.max_seq_len}, '
              f'{os.cpu_count()} CPUs, best of {args.repeat}')
        print_report(rows, load)
        if args.output_json:
            Path(args.output_json).write_text(json.dumps({'rows': [r.as_dict() for r in rows], 'load': load,
                                                          'runs': {str(k): v for k, v in best.items()}}, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
