"""Event streams from message brokers (Redis Streams, NATS JetStream): micro-batches into a warehouse
table and the online values of feature views, dead letters for what cannot be applied.

`base.py` is the Broker interface, one module per broker beside it; `consume.py` applies
a stream's batches; `follow.py` is `gristmill stream`: the streams and the change logs of
the cdc tables (`ingest/cdc/`) followed in one process.
"""
