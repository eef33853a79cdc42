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
                 '-latency_requests', 4, '-memory_workers', 1, '-output_json', report)

    assert '| benchmark | ours | baseline | ratio | goal | met |' in stdout
    rows = json.loads(report.read_text())['rows']
    assert [re.match(r'\w+', row['name']).group() for row in rows] == ['1', '2', '3', '4', '5', '6', 'tokenizer']
    assert [row['goal'] for row in rows[:5]] == ['>= 0.90', '>= 0.50', '>= 2.5, equal within 1e-5', '>= 1.0',
                                                 '<= +3 ms at p50']
    assert float(re.search(r'max difference (\S+)\)', rows[2]['ratio']).group(1)) <= 1e-5  # same vectors
    assert 'identical' in rows[6]['ratio'] or 'not installed' in rows[6]['baseline']


def test_gpu_mode_writes_a_google_model_and_measures_each_variant(tiny_model_dirs):
    stdout = run(sys.executable, REPO / 'benchmarks' / 'ratios.py', 'gpu', '-model_dir', tiny_model_dirs['hf'],
                 '-size', 'tiny', '-cpu', '-variants', 'fp16', '-num_client', 1, '-client_batch', 8,
                 '-num_repeat', 1)

    assert 'max_seq_len 40, fp16, device' in stdout and '>= 10,000 sentences/s on one H100' in stdout


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
