"""Client of bert-serving: map sentences to fixed-length vectors with a remote BERT server.

Needs only pyzmq and numpy. Speaks the wire protocol of bert-as-service 1.10.0, so it
works with both that server and ours.

Modules, one role each: :mod:`.client` (BertClient), :mod:`.concurrent` (ConcurrentBertClient),
:mod:`.connection` (the sockets to a server), :mod:`.protocol` (frame layouts), :mod:`.errors`,
:mod:`.arguments` (checks of what callers pass), :mod:`.results` (shaping results) and
:mod:`.classification` (class probabilities as ranked labels).
"""

from .client import BertClient
from .concurrent import ConcurrentBertClient
from .errors import ServerError
from .protocol import Response
from .version import __version__

__all__ = ['BertClient', 'ConcurrentBertClient', 'Response', 'ServerError', '__version__']
