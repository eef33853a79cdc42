"""TensorFlow, imported without the native start-up lines it writes to stderr (oneDNN notices, absl warnings),
and without loading Keras.

TensorFlow 2.17+ writes those lines through absl before ``TF_CPP_MIN_LOG_LEVEL`` is read, so the only way to
keep them out of a user's log is to hold file descriptor 2 while the library loads. They are shown when
``TF_CPP_MIN_LOG_LEVEL`` is ``0`` (what ``-verbose`` sets), and replayed if the import fails.

TensorFlow's ``__init__`` also imports all of Keras (``keras.src.optimizers``, to register Keras optimizers for
loading SavedModels that hold them), which is a third to a half of the import's time; no part of bert-serving
uses Keras. That import is skipped: Keras loads as usual when a program first uses ``tf.keras`` or imports it.
"""

import os
import sys
import tempfile

# The module TensorFlow's __init__ imports eagerly, and tolerates finding missing.
_EAGER_KERAS = 'keras.src.optimizers'


def _import_tensorflow():
    if 'tensorflow' in sys.modules:
        import tensorflow
        return tensorflow
    if os.environ.get('TF_CPP_MIN_LOG_LEVEL') == '0':
        return _without_eager_keras()
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # the C++ lines written later, at run time
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            return _without_eager_keras()
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors='replace'))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _without_eager_keras():
    """``import tensorflow``, with its eager import of Keras found missing (a None entry in sys.modules makes
    that import raise ImportError, which TensorFlow passes over); the entry is removed right after."""
    blocked = _EAGER_KERAS not in sys.modules
    if blocked:
        sys.modules[_EAGER_KERAS] = None
    try:
        import tensorflow
    finally:
        if blocked:
            del sys.modules[_EAGER_KERAS]
    return tensorflow


tf = _import_tensorflow()
