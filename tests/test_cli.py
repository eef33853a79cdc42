"""bert-serving-start refuses bad options and bad model folders with a clear message, before any worker starts."""

import subprocess

import pytest

from servers import BIN


def start(*options) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / 'bert-serving-start'), *map(str, options)], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize('options, message', [
    (['-pooling_strategy', 'FOO'], "unknown pooling strategy 'FOO'"),
    (['-pooling_layer', '-3'], '-pooling_layer [-3] is out of range: the model has 2 encoder layers'),
    (['-pooling_layer', '2'], '-pooling_layer [2] is out of range'),
    (['-max_seq_len', '2'], '2 is too small'),
    (['-max_seq_len', 'x'], "'x' is not an integer or NONE"),
    (['-max_seq_len', '65'], 'longer than the model allows (max_position_embeddings = 64'),
    (['-num_worker', '0'], '0 must be at least 1'),
    (['-gpu_memory_fraction', '1.5'], 'must be in (0, 1]'),
])
def test_bad_options_exit_with_a_clear_message(tiny_model_dirs, options, message):
    result = start('-model_dir', tiny_model_dirs['hf'], *options)
    assert result.returncode == 2
    assert message in result.stderr, result.stderr


def test_missing_model_folder_and_files(tmp_path):
    result = start('-model_dir', tmp_path / 'nowhere')
    assert result.returncode == 2 and 'does not exist' in result.stderr
    result = start('-model_dir', tmp_path)
    assert result.returncode == 2 and str(tmp_path) in result.stderr


def test_help_lists_every_option_and_aliases():
    result = subprocess.run([str(BIN / 'bert-serving-start'), '--help'], capture_output=True, text=True, timeout=60)
    for option in ('-model_dir', '-port_in', '-port_data', '-port_result', '-pooling_strategy', '-fixed_embed_length',
                   '-prefetch_size', '-max_queued_rows', '-curve_client_keys', '-http_auth_token'):
        assert option in result.stdout
    version = subprocess.run([str(BIN / 'bert-serving-start'), '-version'], capture_output=True, text=True)
    assert version.stdout.startswith('bert-serving-start 2.')
