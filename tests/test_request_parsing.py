"""parse_request: every malformed request becomes a BadRequest with a message, never a crash."""

import json

import pytest

from bert_serving.server.protocol import BadRequest
from bert_serving.server.ventilator import ControlRequest, EncodeRequest, parse_request, reply_address


def frames(payload, req_id=b'1', msg_len=None, identity=b'client'):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    if msg_len is None:
        msg_len = b'%d' % (len(payload) if isinstance(payload, list) else 0)
    return [identity, body, req_id, msg_len]


def test_plain_and_pre_tokenized_requests():
    request = parse_request(frames(['hello world', 'a ||| b']))
    assert isinstance(request, EncodeRequest) and not request.tokenized
    assert request.texts == ['hello world', 'a ||| b'] and request.request_id == b'1'
    assert parse_request(frames([['hello', 'world']])).tokenized


def test_control_commands():
    for command in (b'SHOW_CONFIG', b'SHOW_STATUS', b'TERMINATION'):
        request = parse_request(frames(command))
        assert isinstance(request, ControlRequest) and request.command == command


@pytest.mark.parametrize('bad, message', [
    ([b'only', b'two'], 'expected 4 frames'),
    (frames(['x'], req_id=b'-1'), 'request_id'),
    (frames(['x'], req_id=b'abc'), 'request_id'),
    (frames(['x'], msg_len=b'1.5'), 'msg_len'),
    (frames(b'\xff\xfe not utf-8', msg_len=b'1'), 'UTF-8 JSON'),
    (frames(b'{"texts": 1}', msg_len=b'1'), 'non-empty JSON list'),
    (frames([], msg_len=b'0'), 'non-empty JSON list'),
    (frames(['ok', 3]), 'item 1 must be a string'),
    (frames(['ok', '   ']), 'item 1 is empty'),
    (frames([['a'], 'b']), 'item 1 must be a non-empty list'),
    (frames([['a', '']]), 'token 1 of item 0'),
    (frames(['a', 'b'], msg_len=b'5'), 'msg_len says 5'),
])
def test_malformed_requests_are_rejected_with_a_reason(bad, message):
    with pytest.raises(BadRequest, match=message):
        parse_request(bad)


def test_reply_address_only_when_identifiable():
    assert reply_address([b'client', b'x', b'7']) == (b'client', b'7')
    assert reply_address([b'client', b'x', b'seven', b'1']) is None
    assert reply_address([b'only']) is None
