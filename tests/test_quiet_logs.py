"""TensorFlow's native start-up lines (oneDNN notices, absl warnings) stay out of the log unless -verbose."""

import os
import subprocess
import sys

import pytest

from servers import ServerProcess

NATIVE_MARKERS = ('absl::InitializeLog', 'oneDNN custom operations')

pytestmark = pytest.mark.slow


def import_graph_module(level: str | None) -> str:
    env = {key: value for key, value in os.environ.items() if key != 'TF_CPP_MIN_LOG_LEVEL'}
    if level is not None:
        env['TF_CPP_MIN_LOG_LEVEL'] = level
    return subprocess.run([sys.executable, '-c', 'import bert_serving.server.model.graph'], env=env,
                          capture_output=True, text=True, timeout=120, check=True).stderr


def test_tensorflow_import_is_quiet_unless_asked():
    assert not any(marker in import_graph_module(None) for marker in NATIVE_MARKERS)
    assert any(marker in import_graph_module('0') for marker in NATIVE_MARKERS)  # they exist, and -verbose shows them


def test_server_log_holds_only_our_lines(tiny_model_dirs, tmp_path):
    with ServerProcess(tiny_model_dirs['hf'], log_dir=tmp_path) as server:
        assert server.client().encode(['hello world']).shape == (1, 32)
    log = server.log()
    assert 'ready to serve requests' in log
    assert not any(marker in log for marker in NATIVE_MARKERS), log


KERAS_AFTER_OUR_IMPORT = '''
import sys
import numpy as np
from bert_serving.server.model.tensorflow_quiet import tf
print(sorted(name for name in sys.modules if name.split('.')[0] == 'keras'))
model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(2)])
model.compile(optimizer=tf.keras.optimizers.Adam(), loss='mse')
model.fit(np.ones((4, 3)), np.zeros((4, 2)), verbose=0)
print(type(model.optimizer).__name__)
'''


def test_tensorflow_loads_without_keras_and_keras_still_works_when_used():
    lines = subprocess.run([sys.executable, '-c', KERAS_AFTER_OUR_IMPORT], capture_output=True, text=True,
                           timeout=120, check=True).stdout.splitlines()
    assert lines[0] == '[]'  # Keras was not loaded along with TensorFlow
    assert lines[-1] == 'Adam'
