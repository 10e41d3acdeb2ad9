"""Where batches go after a collector: Redis Streams, the disk spool, and PostgreSQL.

``encoding`` turns a :class:`~tickguard.models.Batch` into one compact, versioned stream
entry and back; ``redis_stream`` is the collector-side sink (XADD, spool when Redis is
down, replay in order); ``persist`` is the consumer-group reader that moves entries into
PostgreSQL and acknowledges them only after the commit.
"""
