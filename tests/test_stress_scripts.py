"""The stress scripts of stress/ run end to end in a short mode, so they do not rot.

Their full runs (10,000 fuzz messages, a 10-minute soak, 8 clients x 3,000-row requests)
are reported in the issue notes; here they run small, on the tiny model.
"""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

STRESS = Path(__file__).resolve().parents[1] / 'stress'


def run_script(name: str, model_dir, *options, timeout=240) -> str:
    result = subprocess.run([sys.executable, str(STRESS / name), '-model_dir', str(model_dir), '-num_worker', '1',
                             *map(str, options)], capture_output=True, text=True, timeout=timeout, cwd=STRESS)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    return result.stdout


def test_mixed_load_checks_every_row(tiny_model_dirs, tmp_path):
    out = run_script('mixed_load.py', tiny_model_dirs['hf'], '-clients', 3, '-requests', 3, '-max_size', 200,
                     '-log', tmp_path / 'server.log')
    assert 'requests checked: 9,' in out


def test_fuzz_keeps_the_server_up_and_correct(tiny_model_dirs, tmp_path):
    out = run_script('fuzz.py', tiny_model_dirs['hf'], '-messages', 600, '-check_every', 50,
                     '-log', tmp_path / 'server.log')
    assert 'fuzz messages sent: 600' in out and 'client checks passed: 12' in out


def test_soak_reports_requests_errors_and_memory(tiny_model_dirs, tmp_path):
    out = run_script('soak.py', tiny_model_dirs['hf'], '-seconds', 5, '-warmup', 2, '-clients', 2,
                     '-log', tmp_path / 'server.log')
    assert ' 0 errors' in out and 'server RSS after warm-up' in out
