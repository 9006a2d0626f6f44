"""leadctl: ingest lead dumps, resolve identities, tag, score, route, portray."""

__version__ = "0.1.0"
