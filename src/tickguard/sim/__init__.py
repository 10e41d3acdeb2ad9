"""Broker simulators for drills and tests: a seeded market, ground truth, faults, broker wires.

``market``, ``ticks``, ``universe``, ``clock``, ``truth`` and ``faults`` know no broker, nor do
``server`` (lifecycle, connections, connection faults), ``feed`` (the pump and data faults)
and ``sessions``: a broker simulator is only its wire encoding (``kis_feed``/``kiwoom_feed``),
its control protocol and its REST routes (``kis*`` / ``kiwoom*`` modules).
"""
