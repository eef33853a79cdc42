__version__ = "2.0.0"
# The protocol generation we speak; the 1.10.0 client compares it with its own version.
PROTOCOL_VERSION = "1.10.0"
