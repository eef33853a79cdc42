"""Client side of the bert-serving wire protocol (compatible with bert-as-service 1.10.0).

Client -> server (PUSH to ``port``):
    [identity, payload, request_id, msg_len]
    payload is the JSON list of sentences (or of token lists), or a control word
    such as ``SHOW_CONFIG`` with msg_len 0; ids and lengths are ASCII decimal.

Server -> client (PUB on ``port_out``, topic = identity):
    [identity, json_info, raw_bytes, request_id]   an encoding (C-order array)
    [identity, json, request_id]                   a config or status dict
    [identity, json_info, b'', request_id]         an error: json_info holds
                                                   ``error`` and ``error_type``
"""

import json
from typing import NamedTuple

import numpy as np

from .errors import ServerError

SHOW_CONFIG = b'SHOW_CONFIG'
SHOW_STATUS = b'SHOW_STATUS'


class Response(NamedTuple):
    """One encoding result: the request id, the embedding, and the server's tokens ('' if not sent)."""
    id: int
    embedding: object
    tokens: object


def request_frames(identity, payload, request_id, msg_len):
    """The four frames of a request."""
    return [identity, payload, b'%d' % request_id, b'%d' % msg_len]


def texts_payload(texts):
    """JSON payload for a list of sentences or of token lists."""
    return json.dumps(texts, ensure_ascii=False).encode('utf-8')


def reply_id(frames):
    """Request id a reply answers (its last frame)."""
    return int(frames[-1])


def is_encoding(frames):
    """True for an encoding (or error) reply, False for a config/status reply."""
    return len(frames) == 4


def _load_info(frames):
    """Parse the JSON frame of a reply, raising ServerError when it reports an error."""
    info = json.loads(frames[1])
    if isinstance(info, dict) and 'error' in info:
        raise ServerError(info['error'], info.get('error_type', 'ServerError'), reply_id(frames))
    return info


def decode_dict(frames):
    """The dict carried by a config/status reply."""
    return _load_info(frames)


def decode_encoding(frames):
    """Response of an encoding reply, with a writable C-order ndarray as embedding."""
    info = _load_info(frames)
    array = np.frombuffer(bytearray(frames[2]), dtype=info['dtype']).reshape(info['shape'])
    return Response(reply_id(frames), array, info.get('tokens', ''))
