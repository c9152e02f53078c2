"""Event streams from message brokers (Redis Streams): micro-batches into a warehouse
table and the online values of feature views, dead letters for what cannot be applied.

`base.py` is the Broker interface, one module per broker beside it; `consume.py` applies
a stream's batches; `gristmill stream` (`ingest/cdc/follow.py`) runs them with the change
logs.
"""
