"""The proxy's pool of ZeroMQ clients, with the server's failures turned into HTTP errors."""
import contextlib
import os

from bert_serving.client import ConcurrentBertClient, ServerError

from .config import HttpConfig
from .errors import ApiError


def connect(config: HttpConfig) -> ConcurrentBertClient:
    """A pool of ``http_max_connect`` clients of the server that ``config`` names."""
    return ConcurrentBertClient(
        max_concurrency=config.http_max_connect, ip=config.server_ip, port=config.port, port_out=config.port_out,
        ignore_all_checks=True, timeout=config.request_timeout_ms, server_public_key=config.server_public_key,
        client_secret_key=config.client_secret_key)


class ServerPool:
    """The bert-serving server as the proxy sees it, through ``clients`` (a ConcurrentBertClient)."""

    def __init__(self, config: HttpConfig, clients):
        self.config, self.clients = config, clients
        self._info = {}  # facts of the server config learnt once: whether it sends tokens, the model name

    @contextlib.contextmanager
    def asking(self):
        """Turn the client's failures into the HTTP errors a caller can act on."""
        try:
            yield
        except TimeoutError:
            raise ApiError(504, f'the bert-serving server at {self.config.server_ip}:{self.config.port} did not '
                                f'answer within {self.config.request_timeout_ms} ms', 'timeout') from None
        except ServerError as error:
            if error.error_type == 'BadRequest':
                raise ApiError(400, f'the server rejected the request: {error}', 'bad_request') from None
            status, kind = (503, 'server_busy') if error.error_type == 'ServerBusy' else (502, 'server_error')
            raise ApiError(status, f'the server failed the request ({error.error_type}): {error}', kind) from None

    def status(self) -> dict:
        """The server's SHOW_STATUS."""
        with self.asking():
            return self.clients.server_status

    def client_status(self) -> dict:
        """The state of a pooled client, with the pool's size."""
        return {**self.clients.status, 'max_concurrency': self.config.http_max_connect}

    def info(self) -> dict:
        """``shows_tokens`` (the server runs with -show_tokens_to_client), ``model`` (its folder name), and
        ``task``, ``labels``, ``rerank_label`` (a -task classify server's)."""
        if not self._info:
            with self.asking():
                server_config = self.clients.server_config
            self._info.update(shows_tokens=bool(server_config.get('show_tokens_to_client')),
                              model=os.path.basename(os.path.normpath(server_config.get('model_dir') or 'bert')),
                              task=server_config.get('task') or 'encode', labels=server_config.get('labels'),
                              rerank_label=server_config.get('rerank_label'))
        return self._info

    def encode(self, texts, is_tokenized: bool = False):
        """(embeddings, number of tokens, where the count comes from: 'server' or 'whitespace')."""
        shows_tokens = self.info()['shows_tokens']
        try:
            with self.asking():
                result = self.clients.encode(texts, is_tokenized=is_tokenized, show_tokens=shows_tokens)
        except (TypeError, ValueError) as error:  # the client checks texts before sending
            raise ApiError(400, str(error), 'bad_request') from None
        if shows_tokens and isinstance(result, tuple):
            embeddings, server_tokens = result
            return embeddings, sum(map(len, server_tokens)), 'server'
        num_tokens = sum(len(t) if is_tokenized else len(t.split()) for t in texts)
        return result, num_tokens, 'whitespace'
