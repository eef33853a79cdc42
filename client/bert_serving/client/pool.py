"""The servers of a client over several: their sockets, which one holds which request, failover.

Every method is called with the client's lock held; only the poll itself runs without it.
"""

import itertools
from collections import deque
import math
import time
from dataclasses import dataclass, field

import zmq
from zmq.utils.monitor import recv_monitor_message

from .connection import connect_pair, open_sockets
from .protocol import reply_id
from .selection import by_preference, resolve_all

_WATCHED = zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED
_RECONNECT_MAX_MS = 1000   # a server that went away is tried again at least every second
_ORPHAN_RETRY_MS = 100     # how often requests that no server could queue are offered again


class ServerLink:
    """The two sockets to one server, watched so that the pool knows when they are connected."""

    def __init__(self, context, address, identity, curve_keys):
        self.address = address
        self.receiver, self.sender = open_sockets(context, identity, *curve_keys)
        self.sender.setsockopt(zmq.IMMEDIATE, 1)  # queue nothing for a server that is not connected
        for sock in (self.receiver, self.sender):
            sock.setsockopt(zmq.RECONNECT_IVL_MAX, _RECONNECT_MAX_MS)
        # Watch before connecting, so that no connection event is missed.
        self.monitors = [sock.get_monitor_socket(_WATCHED) for sock in (self.receiver, self.sender)]
        self._connected = [False, False]
        connect_pair(self.receiver, self.sender, address.host, address.port, address.port_out)
        self.pending = set()      # ids of the requests this server holds
        self.last_pick = 0
        self.suspended = False    # let a request time out; picked last until it answers again
        self.num_moved_off = 0    # requests sent elsewhere because the connection dropped (or it left)
        self.num_timed_out = 0    # requests that waited the whole timeout here

    @property
    def connected(self):
        """Both sockets are connected (and, with CurveZMQ, authenticated)."""
        return all(self._connected)

    def read_events(self):
        """Apply the connection events waiting on the monitors (without waiting).

        Returns True when a connection dropped meanwhile, even if it is back already: what
        was sent before the drop is lost.
        """
        dropped = False
        for side, monitor in enumerate(self.monitors):
            while monitor.poll(0):
                connected = recv_monitor_message(monitor)['event'] == zmq.EVENT_HANDSHAKE_SUCCEEDED
                dropped |= self._connected[side] and not connected
                self._connected[side] = connected
        return dropped

    def close(self):
        for sock, monitor in zip((self.receiver, self.sender), self.monitors):
            sock.disable_monitor()
            monitor.close()
            sock.close()


@dataclass
class _Request:
    frames: list
    link: ServerLink = None          # None: no server holds it yet (an orphan)
    deadline: float = None           # monotonic s at which it is given up where it is; None: never
    timed_out_at: set = field(default_factory=set)  # addresses that let it time out


class ServerPool:
    """The servers named by the client's entries, re-resolved every ``refresh_s``, and the requests they hold.

    ``pending`` is the client's set of ids it still waits for: a request no longer in it is not
    sent again, and one given up is removed from it.
    """

    def __init__(self, context, entries, identity, curve_keys, resolver, refresh_s, timeout_ms, pending):
        self._context, self._identity, self._curve_keys = context, identity, curve_keys
        self._entries, self._resolver, self._refresh_s = entries, resolver, refresh_s
        self._timeout_ms = timeout_ms
        self._pending = pending
        self._links = {}          # ServerAddress -> ServerLink
        self._requests = {}       # request id -> _Request, in the order of their deadlines
        self._orphans = set()     # ids of requests no server holds
        self._arrived = deque()   # replies read, not yet taken
        self._resolved = {}       # entry -> the hosts it resolved to last
        self._picks = itertools.count(1)
        self._next_refresh = None
        self.poller = zmq.Poller()
        self.refresh()

    @property
    def links(self):
        """The links, ordered by address."""
        return [self._links[address] for address in sorted(self._links)]

    def refresh(self):
        """Resolve the entries again: connect to servers that appeared, move requests off those gone."""
        servers, self._resolved = resolve_all(self._entries, self._resolver, self._resolved)
        for address in sorted(servers - self._links.keys()):
            self._links[address] = ServerLink(self._context, address, self._identity, self._curve_keys)
        for address in self._links.keys() - servers:
            gone = self._links.pop(address)
            self._move_requests_off(gone)
            gone.close()
        for link in self._links.values():
            link.suspended = False  # a fresh chance after each refresh
        self.poller = zmq.Poller()
        for link in self._links.values():
            for sock in (link.receiver, *link.monitors):
                self.poller.register(sock, zmq.POLLIN)
        self._next_refresh = None if self._refresh_s is None else time.monotonic() + self._refresh_s

    def close(self):
        for link in self._links.values():
            link.close()

    # ---- requests ---------------------------------------------------------------------

    def assign(self, request_id, frames):
        """Send a request to the best connected server, or keep it until one connects."""
        self._hand_over(request_id, _Request(frames))

    def _hand_over(self, request_id, request):
        """Place the request; if no server can take it, it waits ``timeout`` for one from now."""
        if not self._place(request_id, request):
            request.link = None
            self._orphans.add(request_id)
            self._restart_clock(request_id, request)

    def _place(self, request_id, request):
        """Send to the most preferred connected server that takes it; True when one did."""
        candidates = [link for link in self._links.values()
                      if link.connected and link.address not in request.timed_out_at]
        for link in by_preference(candidates):
            try:
                link.sender.send_multipart(request.frames, flags=zmq.NOBLOCK)
            except zmq.Again:
                continue  # its queue is full: try the next one
            link.pending.add(request_id)
            link.last_pick = next(self._picks)
            request.link = link
            self._orphans.discard(request_id)
            self._restart_clock(request_id, request)
            return True
        return False

    def _restart_clock(self, request_id, request):
        """Give the request a full timeout from now; re-inserting keeps _requests in deadline order."""
        self._requests.pop(request_id, None)
        self._requests[request_id] = request
        request.deadline = None if self._timeout_ms < 0 else time.monotonic() + self._timeout_ms / 1000

    def _move_requests_off(self, link):
        """Send the requests ``link`` holds to other servers, or keep them until one connects."""
        held, link.pending = sorted(link.pending), set()
        link.num_moved_off += len(held)
        for request_id in held:
            request = self._requests[request_id]
            if request_id not in self._pending:
                self._forget(request_id)  # given up by the caller: not worth sending again
            else:
                self._hand_over(request_id, request)

    def _forget(self, request_id):
        request = self._requests.pop(request_id, None)
        self._orphans.discard(request_id)
        if request is not None and request.link is not None:
            request.link.pending.discard(request_id)

    def maintain(self):
        """Refresh when due, offer orphans to the servers, and move timed-out requests on.

        Raises TimeoutError, after removing it from ``pending``, for a request no server
        answered within the timeout.
        """
        now = time.monotonic()
        if self._next_refresh is not None and now >= self._next_refresh:
            self.refresh()
        for request_id in list(self._orphans):
            self._place(request_id, self._requests[request_id])
        while self._requests:
            request_id, request = next(iter(self._requests.items()))
            if request.deadline is None or request.deadline > now:
                return
            self._time_out(request_id, request)

    def _time_out(self, request_id, request):
        """The request waited its whole timeout: try another server, or give it up."""
        link = request.link
        if request_id in self._pending and link is not None:
            link.suspended = True
            link.num_timed_out += 1
            link.pending.discard(request_id)
            request.timed_out_at.add(link.address)
            if self._place(request_id, request):
                return
        self._forget(request_id)
        if request_id in self._pending:
            self._pending.discard(request_id)
            tried = sorted(map(str, request.timed_out_at)) or 'none connected'
            raise TimeoutError(f'request {request_id}: no server answered within timeout={self._timeout_ms} ms '
                               f'(servers that let it time out: {tried}; servers known: '
                               f'{[str(link.address) for link in self.links] or "none"})')

    # ---- replies ----------------------------------------------------------------------

    def wait_ms(self, deadline):
        """How long the next poll may wait (ms, None: forever) before something is due."""
        times = [deadline, self._next_refresh]
        if self._requests:
            times.append(next(iter(self._requests.values())).deadline)
        if self._orphans:
            times.append(time.monotonic() + _ORPHAN_RETRY_MS / 1000)
        soonest = min((t for t in times if t is not None), default=None)
        return None if soonest is None else max(0, math.ceil((soonest - time.monotonic()) * 1000))

    def read_connection_events(self):
        """Learn which servers connected or went away; move requests off those gone."""
        for link in self._links.values():
            if link.read_events():
                self._move_requests_off(link)

    def next_reply(self, identity):
        """A reply addressed to ``identity`` that has arrived, or None (without waiting).

        Reads every server's queue first, so that no server's replies wait behind another's
        and a reply that is here is never taken for a timeout.
        """
        self.read_connection_events()
        for link in self._links.values():
            while True:
                try:
                    frames = link.receiver.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                if frames[0] == identity:  # the subscription matches by prefix: skip longer identities
                    self._answered(link, reply_id(frames))
                    self._arrived.append(frames)
        return self._arrived.popleft() if self._arrived else None

    def _answered(self, link, request_id):
        link.suspended = False
        self._forget(request_id)  # wherever it is: a late reply from a former holder counts too
