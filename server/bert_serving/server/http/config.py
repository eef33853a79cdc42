"""The settings of the HTTP proxy."""
from dataclasses import dataclass

# Load balancers and orchestrators probe these without credentials.
OPEN_ENDPOINTS = ('/health', '/ready')


@dataclass(frozen=True)
class HttpConfig:
    """Settings of the HTTP proxy; ``from_args`` builds it from the parsed ``bert-serving-start`` options."""
    http_port: int
    port: int = 5555
    port_out: int = 5556
    server_ip: str = 'localhost'       # where the ZeroMQ server listens
    bind: str = '0.0.0.0'              # interface the HTTP server listens on
    http_max_connect: int = 10         # pooled clients, i.e. encodes in flight at once
    cors: str = '*'                    # Access-Control-Allow-Origin: *, one origin, or a comma-separated list
    max_body_bytes: int = 10 * 1024 * 1024
    auth_token: str | None = None      # when set, requests need "Authorization: Bearer <token>"
    request_timeout_ms: int = 60_000   # longest wait for the server before answering 504
    verbose: bool = False
    parent_pid: int | None = None      # exit once this process is gone
    server_public_key: str | None = None   # with client_secret_key: a CurveZMQ server (BertClient's options)
    client_secret_key: str | None = None

    @classmethod
    def from_args(cls, args, parent_pid: int | None = None, server_public_key: str | None = None,
                  client_secret_key: str | None = None) -> 'HttpConfig':
        """Config from the options of ``bert-serving-start``: the proxy listens where the server does."""
        bind = getattr(args, 'bind', '*')
        every_interface = bind in ('*', '0.0.0.0')
        optional = {name: getattr(args, name) for name in ('max_body_bytes', 'auth_token', 'request_timeout_ms')
                    if getattr(args, name, None) is not None}
        return cls(http_port=args.http_port, port=args.port, port_out=args.port_out,
                   server_ip='localhost' if every_interface else bind, bind='0.0.0.0' if every_interface else bind,
                   http_max_connect=args.http_max_connect, cors=args.cors, verbose=args.verbose,
                   parent_pid=parent_pid, server_public_key=server_public_key,
                   client_secret_key=client_secret_key, **optional)

    @property
    def cors_origins(self):
        return '*' if self.cors.strip() == '*' else [origin.strip() for origin in self.cors.split(',')]
