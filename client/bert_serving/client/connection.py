"""The two ZeroMQ sockets that link a client to one server: requests out, results in."""

import zmq


def connect_sockets(context, ip, port, port_out, identity, server_public_key=None, client_secret_key=None):
    """A ``(receiver, sender)`` pair connected to the server at ``ip``.

    The receiver (SUB, subscribed to ``identity``) takes results from ``port_out``; the sender
    (PUSH) sends requests to ``port``. With CurveZMQ key files both are encrypted.
    """
    receiver = context.socket(zmq.SUB)
    sender = context.socket(zmq.PUSH)
    try:
        if server_public_key or client_secret_key:
            apply_curve_keys([receiver, sender], server_public_key, client_secret_key)
    except BaseException:
        receiver.close(0)
        sender.close(0)
        raise
    receiver.setsockopt(zmq.LINGER, 0)
    receiver.setsockopt(zmq.SUBSCRIBE, identity)
    # Connect the result socket first: a reply published before our subscription
    # reaches the server is lost.
    receiver.connect(f'tcp://{ip}:{port_out}')
    sender.setsockopt(zmq.LINGER, 0)
    sender.connect(f'tcp://{ip}:{port}')
    return receiver, sender


def apply_curve_keys(sockets, server_public_key, client_secret_key):
    """Encrypt and authenticate ``sockets`` with CurveZMQ key files (pyzmq's zmq.auth format)."""
    import zmq.auth

    if not (server_public_key and client_secret_key):
        raise ValueError('CurveZMQ needs both server_public_key (the server.key file) and '
                         'client_secret_key (this client\'s NAME.key_secret file)')
    server_public, _ = zmq.auth.load_certificate(server_public_key)
    public, secret = zmq.auth.load_certificate(client_secret_key)
    if secret is None:
        raise ValueError(f'{client_secret_key} holds no secret key: pass the .key_secret file')
    for socket in sockets:
        socket.curve_serverkey = server_public
        socket.curve_publickey = public
        socket.curve_secretkey = secret
