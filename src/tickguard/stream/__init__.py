"""The streaming side of a collector: the one place that owns sockets, time and retries.

``supervisor`` runs one reconnect loop per app key; ``planner`` decides which subscriptions
go to which key; ``backoff`` and ``breaker`` decide when to try again; ``batcher`` is the
bounded hand-off to a sink; ``recorder`` keeps every raw frame. Nothing here knows a broker:
everything broker-specific arrives through :mod:`tickguard.brokers.base`.
"""
