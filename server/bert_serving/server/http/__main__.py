"""``python -m bert_serving.server.http``: the proxy alone, in front of a server started elsewhere."""
from .cli import main

main()
