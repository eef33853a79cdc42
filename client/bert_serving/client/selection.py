"""Which servers a client over several talks to, and which of them takes the next request.

Pure logic, no sockets: parsing ``ip`` lists, resolving names, ranking servers for the next request.
"""

import ipaddress
import socket
from typing import NamedTuple


class ServerAddress(NamedTuple):
    """One server: the host (an IPv4 address once resolved) and its two ports."""
    host: str
    port: int
    port_out: int

    def __str__(self):
        return f'{self.host}:{self.port}:{self.port_out}'


def names_several_servers(ip):
    """True when ``ip`` is a list (or tuple) of servers or a comma-separated string of them."""
    return isinstance(ip, (list, tuple)) or (isinstance(ip, str) and ',' in ip)


def parse_servers(ip, port, port_out):
    """The entries of ``ip`` as ServerAddress, each ``host`` (with ``port``/``port_out``) or ``host:port:port_out``.

    A host may still be a name: :func:`resolve_all` turns it into addresses.
    """
    items = ip.split(',') if isinstance(ip, str) else list(ip)
    entries = []
    for index, item in enumerate(items):
        where = f'ip[{index}]={item!r}'
        if not isinstance(item, str):
            raise TypeError(f'{where} is {type(item).__name__}, expected a str "host" or "host:port:port_out"')
        parts = item.strip().split(':')
        if not parts[0] or len(parts) not in (1, 3):
            raise ValueError(f'{where} must be "host" or "host:port:port_out" (IPv4 address or name)')
        ports = (port, port_out) if len(parts) == 1 else (_port(parts[1], where), _port(parts[2], where))
        entries.append(ServerAddress(parts[0], *ports))
    if not entries:
        raise ValueError('ip is an empty list: name at least one server')
    return list(dict.fromkeys(entries))


def _port(text, where):
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f'{where}: port {text!r} must be a number from 1 to 65535')
    return int(text)


def resolve_ipv4(host):
    """The IPv4 addresses of ``host`` (a name or an address), as the system resolver knows them."""
    infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)
    return sorted({info[4][0] for info in infos})


def resolve_all(entries, resolver, previous):
    """Every server the entries stand for, and what each entry resolved to.

    ``resolver(host)`` returns the addresses of a name; an IPv4 literal is not resolved. An
    entry whose name cannot be resolved now keeps its ``previous`` addresses (a DNS hiccup
    must not drop live servers).
    """
    resolved = {}
    for entry in entries:
        if _is_ipv4(entry.host):
            resolved[entry] = [entry.host]
            continue
        try:
            resolved[entry] = sorted(set(resolver(entry.host)))
        except OSError:
            resolved[entry] = previous.get(entry, [])
    servers = {ServerAddress(host, entry.port, entry.port_out) for entry, hosts in resolved.items() for host in hosts}
    return servers, resolved


def _is_ipv4(host):
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def by_preference(links):
    """Servers in the order they should take the next request.

    Fewest pending requests first (so a slow server gets less), among equals the one picked
    longest ago (so one-at-a-time callers still spread); a server that let a request time out
    comes last until it answers again. ``links`` need ``suspended``, ``pending`` and ``last_pick``.
    """
    return sorted(links, key=lambda link: (link.suspended, len(link.pending), link.last_pick))
