"""Kiwoom REST/WebSocket API: sans-I/O codec, REST client and traits (reference §2)."""
