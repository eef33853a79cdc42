"""TensorFlow, imported without the native start-up lines it writes to stderr (oneDNN notices, absl warnings).

TensorFlow 2.17+ writes those lines through absl before ``TF_CPP_MIN_LOG_LEVEL`` is read, so the only way to
keep them out of a user's log is to hold file descriptor 2 while the library loads. They are shown when
``TF_CPP_MIN_LOG_LEVEL`` is ``0`` (what ``-verbose`` sets), and replayed if the import fails.
"""

import os
import sys
import tempfile


def _import_tensorflow():
    if os.environ.get('TF_CPP_MIN_LOG_LEVEL') == '0' or 'tensorflow' in sys.modules:
        import tensorflow
        return tensorflow
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # the C++ lines written later, at run time
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors='replace'))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return tensorflow


tf = _import_tensorflow()
