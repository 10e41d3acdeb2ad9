"""KIS (Korea Investment & Securities) Open API: sans-I/O codec, REST auth, traits.

``codec.KisSession`` speaks the websocket protocol, ``rest.KisRestClient`` obtains tokens
and approval keys, ``traits.KisTraits`` is what the registry lists.
"""
