"""Brokers: one folder each, one registry that lists them.

Adding a broker means adding a folder with its codec, REST client and traits, and one line
in :data:`tickguard.brokers.registry.REGISTRY`.
"""

MAX_NUMBER = 2**63 - 1
"""The largest price, quantity or volume a broker parser passes on: PostgreSQL BIGINT's and
the stream encoding's limit. A larger number is a corrupt field; accepted, it would sink the
whole batch it travels in downstream, so parsers reject it where they read it."""
