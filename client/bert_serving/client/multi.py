"""MultiServerClient: one BertClient over several servers, spreading requests and surviving one dying."""

import time

from .client import BertClient
from .pool import ServerPool
from .selection import parse_servers, resolve_ipv4

STATUS_IDENTITY_SUFFIX = b'#status'


class MultiServerClient(BertClient):
    """A :class:`BertClient` over several servers; ``BertClient(ip=[...])`` makes one.

    ``ip`` names the servers, as a list or one comma-separated string: each entry is ``host``
    (using ``port`` and ``port_out``) or ``host:port:port_out``. A name stands for every IPv4
    address it resolves to (a Kubernetes headless Service, say), resolved again every
    ``refresh_s`` seconds so that servers that come and go are followed::

        bc = BertClient(ip=['gpu-box-1', 'gpu-box-2:6000:6001'], timeout=10000)
        bc = BertClient(ip=['bert-zmq.default.svc.cluster.local'], refresh_s=10, timeout=10000)

    Each request goes to the connected server with the fewest pending requests, and its
    result comes back from that server's sink. When a server's connection drops, or a request
    waits there longer than ``timeout`` ms, its requests are sent to the others; a late
    duplicate result is dropped, so every result arrives exactly once. When no server can take
    a request within ``timeout`` ms, TimeoutError. With ``timeout=-1`` only dropped connections
    are noticed, never a server that hangs.

    Everything else is as in :class:`BertClient`; :attr:`server_config` comes from one of the
    servers, :attr:`server_status` from each of them.
    """

    def __init__(self, ip, *args, refresh_s=30, resolver=None, **kwargs):
        """See :class:`BertClient` for the other arguments.

        :param refresh_s: seconds between two resolutions of the names in ``ip``; None: only once
        :param resolver: ``resolver(name)`` returns the IPv4 addresses of a name (by default the
            system's resolver); the addresses in ``ip`` are never resolved
        """
        if refresh_s is not None and not refresh_s > 0:
            raise ValueError(f'refresh_s must be a positive number of seconds or None, got {refresh_s!r}')
        self.refresh_s = refresh_s
        self._resolver = resolver or resolve_ipv4
        super().__init__(ip, *args, **kwargs)

    def _connect(self, server_public_key, client_secret_key):
        self._curve_keys = (server_public_key, client_secret_key)
        entries = parse_servers(self.ip, self.port, self.port_out)
        self._pool = ServerPool(self._context, entries, self.identity, self._curve_keys, self._resolver,
                                self.refresh_s, self.timeout, self._pending)

    def _close_sockets(self):
        self._pool.close()

    def _dispatch(self, request_id, frames):
        self._pool.assign(request_id, frames)

    def _reply_deadline(self):
        return None  # each request has its own deadline in the pool, which gives it up in time

    def _recv_frames(self, deadline):
        """Next reply addressed exactly to us from any server; TimeoutError once ``deadline`` passes.

        While waiting, requests are moved off servers that went away or let them time out.
        """
        while True:
            with self._lock:
                frames = self._pool.next_reply(self.identity)
                if frames is None:
                    self._pool.maintain()
                    wait_ms, poller = self._pool.wait_ms(deadline), self._pool.poller
            if frames is not None:
                return frames
            if deadline is not None and time.monotonic() >= deadline:
                raise self._timeout_error('no reply from any server')
            poller.poll(wait_ms)

    def _timeout_error(self, what):
        servers = [str(link.address) for link in self._pool.links]
        return TimeoutError(f'{what} within timeout={self.timeout} ms. Servers of ip={self.ip!r}: '
                            f'{servers or "none resolved"}. Are they running, on these ports?')

    @property
    def server_status(self):
        """Each server's status, keyed by ``'host:port:port_out'``: its configuration plus ``statistic``.

        A server that is not connected, or does not answer within ``timeout``, maps to ``{'error': why}``.
        """
        with self._lock:
            self._pool.read_connection_events()
            links = self._pool.links
        return {str(link.address): self._ask_status(link) for link in links}

    def _ask_status(self, link):
        if not link.connected:
            return {'error': f'not connected to {link.address}'}
        address = link.address
        server_public_key, client_secret_key = self._curve_keys
        try:
            with BertClient(ip=address.host, port=address.port, port_out=address.port_out,
                            identity=self.identity + STATUS_IDENTITY_SUFFIX, ignore_all_checks=True,
                            timeout=self.timeout, server_public_key=server_public_key,
                            client_secret_key=client_secret_key) as asker:
                return asker.server_status
        except TimeoutError as exc:
            return {'error': str(exc)}

    @property
    def status(self):
        """This client's state (see :attr:`BertClient.status`) plus ``servers``: each one's connection and load.

        Per server: ``connected``, ``num_pending_request``, ``suspended`` (it let a request time out
        and gets new ones last until it answers), ``num_moved_off`` (requests sent to another server
        because its connection dropped or it left the resolved set) and ``num_timed_out``.
        """
        state = super().status
        with self._lock:
            self._pool.read_connection_events()
            state['servers'] = {str(link.address): _link_state(link) for link in self._pool.links}
        return state


def _link_state(link):
    return {'connected': link.connected, 'num_pending_request': len(link.pending), 'suspended': link.suspended,
            'num_moved_off': link.num_moved_off, 'num_timed_out': link.num_timed_out}
