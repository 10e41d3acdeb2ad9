"""Broker simulators for drills and tests: a seeded market, ground truth, faults, KIS wire.

``market``, ``ticks``, ``universe``, ``clock``, ``truth`` and ``faults`` know no broker (the
Kiwoom simulator reuses them); ``kis*`` modules speak KIS's protocol.
"""
