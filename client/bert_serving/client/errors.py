"""Errors a client raises, and the messages that tell the user what to check."""


class ServerError(RuntimeError):
    """The server answered a request with an error instead of a result.

    ``str(error)`` is the server's message; ``error_type`` names its kind
    (for example ``"ValueError"`` or ``"ServerBusy"``).
    """

    def __init__(self, message, error_type='ServerError', request_id=None):
        super().__init__(message)
        self.error_type = error_type
        self.request_id = request_id


def timeout_error(what, timeout, ip, port, port_out):
    """The TimeoutError for ``what`` not happening within ``timeout`` ms at the server ``ip``."""
    return TimeoutError(
        f'{what} within timeout={timeout} ms. Is the server running at {ip}? '
        f'Are port={port} and port_out={port_out} the ports it was started with? '
        f'For a large request the timeout may be too small: raise it, or use timeout=-1 to wait forever.')
