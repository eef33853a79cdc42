"""Opt-in CurveZMQ: encrypted traffic, and only clients whose public key is in a folder get in.

Keys are pyzmq's certificate files (``zmq.auth``): ``NAME.key`` holds a public key,
``NAME.key_secret`` the public and the secret one. ``bert-serving-keys`` makes them.
"""

import argparse
import glob
import os
import shutil

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator


def curve_enabled(args) -> bool:
    """True when the server was started with client keys; checks that both options are given."""
    given = [args.curve_secret_key is not None, args.curve_client_keys is not None]
    if any(given) and not all(given):
        raise ValueError('-curve_secret_key and -curve_client_keys go together: the server needs its own secret key '
                         'and the folder of the public keys of the clients it lets in')
    if all(given):
        if not os.path.isfile(args.curve_secret_key):
            raise ValueError(f'-curve_secret_key {args.curve_secret_key} is not a file '
                             '(make one with bert-serving-keys)')
        if not os.path.isdir(args.curve_client_keys):
            raise ValueError(f'-curve_client_keys {args.curve_client_keys} is not a folder of client .key files')
    return all(given)


def start_authenticator(context: zmq.Context, client_keys_dir: str) -> ThreadAuthenticator:
    """Let in only clients whose public key is in ``client_keys_dir``; call before binding."""
    authenticator = ThreadAuthenticator(context)
    authenticator.start()
    authenticator.configure_curve(domain='*', location=client_keys_dir)
    return authenticator


def admit_proxy(client_keys_dir: str, folder: str) -> tuple[str, str]:
    """Give the server's own HTTP proxy a key pair and let it in beside the clients in ``client_keys_dir``.

    Writes into ``folder`` (private to the server): ``allowed/`` with the clients' public keys and the
    proxy's, and the proxy's key pair. Returns the ``allowed`` folder and the proxy's secret key file.
    """
    allowed = os.path.join(folder, 'allowed')
    os.makedirs(allowed)
    for public_key in glob.glob(os.path.join(client_keys_dir, '*.key')):
        shutil.copy(public_key, allowed)
    proxy_public, proxy_secret = zmq.auth.create_certificates(folder, 'http-proxy')
    shutil.copy(proxy_public, allowed)
    return allowed, proxy_secret


def make_curve_server(socket: zmq.Socket, secret_key_path: str) -> None:
    """Turn a socket into a CurveZMQ server with the key pair in ``secret_key_path``."""
    public, secret = zmq.auth.load_certificate(secret_key_path)
    socket.curve_publickey = public
    socket.curve_secretkey = secret
    socket.curve_server = True


def create_keys(out_dir: str, client_names: list[str]) -> None:
    """server.key(_secret) in ``out_dir``, each client's pair in ``out_dir/NAME``, their public keys in ``clients/``."""
    os.makedirs(os.path.join(out_dir, 'clients'), exist_ok=True)
    zmq.auth.create_certificates(out_dir, 'server')
    for name in client_names:
        folder = os.path.join(out_dir, name)
        os.makedirs(folder, exist_ok=True)
        public, _ = zmq.auth.create_certificates(folder, name)
        shutil.copy(public, os.path.join(out_dir, 'clients'))


def main(argv=None) -> int:
    """bert-serving-keys: make the key files of a server and its clients."""
    parser = argparse.ArgumentParser(prog='bert-serving-keys', description=main.__doc__)
    parser.add_argument('-out', default='keys', help='folder for the keys')
    parser.add_argument('-clients', nargs='+', default=['client'], help='names of the clients to make keys for')
    args = parser.parse_args(argv)
    create_keys(args.out, args.clients)
    print(f'server: bert-serving-start ... -curve_secret_key {args.out}/server.key_secret '
          f'-curve_client_keys {args.out}/clients')
    for name in args.clients:
        print(f'client {name}: BertClient(..., server_public_key="{args.out}/server.key", '
              f'client_secret_key="{args.out}/{name}/{name}.key_secret")')
    return 0
