"""Frame layouts of every socket, in one place.

External (must match bert-serving-client 1.10.0):
    client -> ventilator   [identity, payload, request_id, msg_len]
    sink   -> client       [identity, json_info, raw_bytes, request_id]   encodings
                           [identity, json, request_id]                   config / status
                           [identity, json_info(error), b'', request_id]  errors (our extension)

Internal (between our own processes):
    worker -> ventilator   [READY, worker_id] | [DONE, batch_id] | [FAILED, worker_id, reason]
    ventilator -> worker   [BATCH, batch_id, json parts] | [STOP]
    ventilator -> sink     [REGISTER, job_id, identity, request_id, n_rows]
                           [CONTROL, identity, request_id, json]
                           [ERROR, identity, request_id, error_type, message]
    worker -> sink         [RESULT, job_id, offset, json_info, raw_bytes, job_id, offset, ...]: four frames
                           per part of a batch, in one message
                           [FAIL, job_id, error_type, message]
"""

import json

import numpy as np

# Control payloads a client may send instead of sentences.
TERMINATE = b'TERMINATION'
SHOW_CONFIG = b'SHOW_CONFIG'
SHOW_STATUS = b'SHOW_STATUS'
CONTROL_COMMANDS = (TERMINATE, SHOW_CONFIG, SHOW_STATUS)

# Internal message kinds.
READY = b'READY'
DONE = b'DONE'
FAILED = b'FAILED'
BATCH = b'BATCH'
STOP = b'STOP'
REGISTER = b'REGISTER'
CONTROL = b'CONTROL'
ERROR = b'ERROR'
RESULT = b'RESULT'
FAIL = b'FAIL'


class BadRequest(ValueError):
    """A client request that cannot be served; the message is sent back to the client."""


def to_bytes(value) -> bytes:
    """ASCII-decimal frame for an integer (the wire format of request ids and lengths)."""
    return b'%d' % value


def parse_int_frame(frame: bytes, name: str) -> int:
    """Read an ASCII-decimal, non-negative integer frame or raise BadRequest."""
    if not frame.isdigit() or len(frame) > 18:
        raise BadRequest(f'{name} must be a non-negative decimal number, got {frame[:32]!r}')
    return int(frame)


def encode_array(array: np.ndarray, tokens=None) -> tuple[bytes, bytes]:
    """Serialize an array the way the 1.10.0 client reads it: (json_info, raw C-order bytes)."""
    array = np.ascontiguousarray(array)
    info = {'dtype': str(array.dtype), 'shape': list(array.shape), 'tokens': tokens if tokens is not None else ''}
    return json.dumps(info, ensure_ascii=False).encode('utf-8'), array.tobytes()


def decode_array(info: bytes, raw: bytes) -> tuple[np.ndarray, object]:
    """Inverse of encode_array: (array, tokens)."""
    meta = json.loads(info)
    array = np.frombuffer(raw, dtype=meta['dtype']).reshape(meta['shape'])
    return array, meta.get('tokens', '')


def error_info(error_type: str, message: str) -> bytes:
    """json_info of an error reply.

    Our client raises ServerError from the ``error`` key. The 1.10.0 client knows no
    error replies; it feeds ``dtype`` to numpy, which raises a TypeError whose text
    carries the message, so old clients fail loudly with the reason instead of hanging.
    """
    info = {'dtype': f'server error ({error_type}): {message}', 'shape': [0], 'tokens': '',
            'error': message, 'error_type': error_type}
    return json.dumps(info, ensure_ascii=False).encode('utf-8')
