"""Brokers: one folder each, one registry that lists them.

Adding a broker means adding a folder with its codec, REST client and traits, and one line
in :data:`tickguard.brokers.registry.REGISTRY`.
"""
