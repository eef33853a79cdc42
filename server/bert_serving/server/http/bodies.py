"""Request bodies: JSON, or a form (``curl -d '{...}'`` sends JSON as a form, so accept that too)."""
import contextlib
import json

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

from .errors import ApiError

FORM_TYPES = ('application/x-www-form-urlencoded', 'multipart/form-data')


def read_body(max_body_bytes: int) -> dict:
    """The body of the current request as a dict, from JSON or from a form."""
    if request.content_length is not None and request.content_length > max_body_bytes:
        raise RequestEntityTooLarge()
    raw = request.get_data()
    if request.mimetype in FORM_TYPES and not raw.lstrip().startswith(b'{'):
        return _form_body(request.form)
    if not raw.strip():
        raise ApiError(400, 'the request body is empty; send JSON such as {"texts": ["hello world"]}', 'bad_request')
    try:
        body = json.loads(raw)
    except ValueError as error:  # UnicodeDecodeError is a ValueError too
        raise ApiError(400, f'the request body is not valid JSON: {error}', 'bad_json') from None
    if not isinstance(body, dict):
        raise ApiError(400, f'the JSON body must be an object, got {type(body).__name__}', 'bad_request')
    return body


def read_texts_body(max_body_bytes: int, example: str) -> dict:
    """``read_body``, with a 400 that shows ``example`` when the body holds no "texts"."""
    body = read_body(max_body_bytes)
    if 'texts' not in body:
        raise ApiError(400, f'missing "texts": send {example}', 'bad_request')
    return body


def _form_body(form) -> dict:
    """A form as a JSON-like body: repeated ``texts`` fields, or one ``texts`` field holding a JSON list."""
    body = {key: form[key] for key in ('id', 'is_tokenized', 'input', 'model', 'encoding_format') if key in form}
    if 'texts' in form:
        texts = form.getlist('texts')
        if len(texts) == 1 and texts[0].lstrip().startswith('['):
            with contextlib.suppress(ValueError):
                texts = json.loads(texts[0])
        body['texts'] = texts
    if 'is_tokenized' in body:
        flag = body['is_tokenized'].strip().lower()
        if flag not in ('true', 'false', '1', '0', 'yes', 'no', 'on', 'off', ''):
            raise ApiError(400, f'is_tokenized must be true or false, got {body["is_tokenized"]!r}', 'bad_request')
        body['is_tokenized'] = flag in ('true', '1', 'yes', 'on')
    return body
