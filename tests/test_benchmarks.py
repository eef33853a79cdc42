"""Smoke tests of bert-serving-benchmark and benchmarks/ in a tiny mode, so they do not rot.

Benchmarks are not tests: nothing here looks at a timing, only at what the commands print and write.
"""
import csv
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from servers import free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*command) -> str:
    completed = subprocess.run([str(c) for c in command], capture_output=True, text=True, cwd=REPO, timeout=280)
    assert completed.returncode == 0, f'{command[:2]} failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}'
    return completed.stdout


def test_benchmark_command_prints_a_table_per_parameter_and_writes_the_results(tiny_model_dirs, tmp_path):
    words = tmp_path / 'words.txt'
    words.write_text('the quick brown fox jumps over the lazy dog')
    outputs = {ext: tmp_path / f'results.{ext}' for ext in ('json', 'csv', 'png')}
    if importlib.util.find_spec('matplotlib') is None:  # the benchmark extra; without it no plot is asked for
        del outputs['png']
    # -test_max_batch_size 256 is the common setting: all three settings share one server.
    stdout = run(BIN / 'bert-serving-benchmark', '-model_dir', tiny_model_dirs['hf'], '-cpu', '-bind', '127.0.0.1',
                 '-port', free_port(), '-port_out', free_port(), '-client_vocab_file', words,
                 '-test_client_batch_size', 1, 4, '-test_max_batch_size', 256, '-test_max_seq_len',
                 '-test_num_client', '-test_pooling_layer', '-client_batch_size', 4, '-num_repeat', 2,
                 *[item for ext, path in outputs.items() for item in (f'-output_{ext}', path)])

    assert '|`client_batch_size`|sentences/s|' in stdout and '|`max_batch_size`|sentences/s|' in stdout
    results = json.loads(outputs['json'].read_text())['results']
    assert [(r['parameter'], r['value']) for r in results] == [
        ('client_batch_size', 1), ('client_batch_size', 4), ('max_batch_size', 256)]
    assert all(r['sentences_per_s'] > 0 for r in results)
    with open(outputs['csv'], newline='') as f:
        assert [row['parameter'] for row in csv.DictReader(f)] == [r['parameter'] for r in results]
    if 'png' in outputs:
        assert outputs['png'].read_bytes().startswith(b'\x89PNG')


def test_ratios_print_every_row_with_its_goal(tiny_model_dirs, tmp_path):
    report = tmp_path / 'ratios.json'
    stdout = run(sys.executable, REPO / 'benchmarks' / 'ratios.py', '-model_dir', tiny_model_dirs['hf'],
                 '-repeat', 1, '-num_sentences', 48, '-client_batch', 24, '-batch', 16, '-small_clients', 3,
                 '-small_sentences', 12, '-natural_sentences', 32, '-natural_max_seq_len', 32,
                 '-latency_requests', 4, '-memory_workers', 1, '-big_clients', 2, '-big_requests', 1,
                 '-matmul_size', 64, '-output_json', report)

    assert '| benchmark | ours | baseline | ratio | goal | met |' in stdout
    rows = json.loads(report.read_text())['rows']
    assert [re.match(r'\w+', row['name']).group() for row in rows] == ['1', '2', '3', '4', '5', '6', '7', '7', '8', '8',
                                                                      '9', '10', 'tokenizer']
    assert [row['goal'] for row in rows[:5]] == ['>= 0.90', '>= 0.50', '>= 2.5, equal within 1e-5', '>= 1.0',
                                                 '<= +3 ms at p50']
    assert [row['goal'] for row in rows[6:12]] == ['>= 0.8'] * 2 + ['>= 0.9'] * 2 + ['>= 0.83, equal within 1e-5',
                                                                                    '>= 0.75']
    assert all('POST /encode' in rows[i]['name'] and 'POST /v1/embeddings' in rows[i + 1]['name'] for i in (6, 8))
    for row in (rows[2], rows[10]):  # the same vectors: length-aware vs padded, token budget vs unchunked
        assert float(re.search(r'max difference (?:to unchunked )?(\S+)\)', row['ratio']).group(1)) <= 1e-5
    assert re.search(r'\d+ GFLOP/s', rows[11]['ours']) and re.search(r'peak \d+ GFLOP/s', rows[11]['baseline'])
    assert 'identical' in rows[12]['ratio'] or 'not installed' in rows[12]['baseline']


def test_gpu_mode_writes_a_google_model_and_measures_each_variant(tiny_model_dirs):
    stdout = run(sys.executable, REPO / 'benchmarks' / 'ratios.py', 'gpu', '-model_dir', tiny_model_dirs['hf'],
                 '-size', 'tiny', '-cpu', '-variants', 'fp16', '-num_client', 1, '-client_batch', 8,
                 '-num_repeat', 1)

    assert 'max_seq_len 40, fp16, device' in stdout and '>= 10,000 sentences/s on one H100' in stdout


def test_multi_server_benchmark_prints_both_rows_with_their_goals(tiny_model_dirs, tmp_path):
    report = tmp_path / 'multi.json'
    stdout = run(sys.executable, REPO / 'benchmarks' / 'multi_server.py', '-model_dir', tiny_model_dirs['hf'],
                 '-repeat', 1, '-num_sentences', 32, '-client_batch', 8, '-max_seq_len', 32, '-latency_requests', 4,
                 '-output_json', report)

    assert '| benchmark | ours | baseline | ratio | goal | met |' in stdout
    rows = json.loads(report.read_text())['rows']
    assert [row['name'][0] for row in rows] == ['1', '2', '3']
    assert [row['goal'] for row in rows] == ['>= 0.90, equal within 1e-5', '<= +1 ms at p50', '<= +1 ms at p50']
    assert float(re.search(r'max difference (\S+)\)', rows[0]['ratio']).group(1)) <= 1e-5  # same vectors


def test_bulk_benchmark_prints_its_ratio_to_the_server(tiny_model_dirs, tmp_path):
    pytest.importorskip('ray.data', reason='the bulk extra: pip install "bert-serving-server[bulk]"')
    report = tmp_path / 'bulk.json'
    # One actor count only: each is a whole bert-serving-encode run (a local Ray cluster), the costly part.
    stdout = run(sys.executable, REPO / 'benchmarks' / 'bulk.py', '-model_dir', tiny_model_dirs['hf'],
                 '-num_sentences', 60, '-num_files', 2, '-rows_per_part', 10, '-repeat', 1, '-actors', 1,
                 '-output_json', report)

    assert '| benchmark | ours | baseline | ratio | goal | met |' in stdout
    results = json.loads(report.read_text())
    assert results['rows'][0]['goal'] == '>= 0.9x' and 'whole command' in results['rows'][1]['name']
    assert results['runs']['1']['rows_encoded'] == 60 and results['runs']['server'] > 0


def test_finetune_benchmark_prints_its_three_rows_with_their_goals(tiny_model_dirs, tmp_path):
    report = tmp_path / 'finetune.json'
    stdout = run(sys.executable, REPO / 'benchmarks' / 'finetune.py', '-model_dir', tiny_model_dirs['hf'], '-tiny',
                 '-repeat', 1, '-speed_steps', 4, '-epochs', 1, '-max_seq_len', 16, '-batch', 8,
                 '-preprocess_rows', 1100, '-output_json', report)
    assert '| benchmark | ours | baseline | ratio | goal | met |' in stdout
    rows = json.loads(report.read_text())['rows']
    assert [row['goal'] for row in rows] == ['>= 1.0', '>= 1.6', 'within 1 point']
    assert re.fullmatch(r'\d+ rows/s with 2 processes', rows[1]['ours'])
    for row in (rows[0], rows[2]):  # the PyTorch side runs where .venv-bench is installed
        assert row['ours'] == 'not run' and 'no .venv-bench' in row['baseline'] or re.match(r'[\d.]+ ', row['ours'])


def test_free_port_never_gives_this_process_the_same_port_twice():
    # The callers bind later (a server after building its graph), so a repeat would start two listeners on one
    # port; 1000 random picks from LISTEN_PORTS would all but surely repeat one without the check.
    ports = [free_port() for _ in range(1000)]
    assert len(set(ports)) == len(ports)
