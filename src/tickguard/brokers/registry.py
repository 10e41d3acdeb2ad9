"""The one list of brokers: :data:`REGISTRY` maps a broker to its traits.

Adding a broker is one line here plus its folder; nothing else in tickguard branches on the
broker's name (the supervisor, ``tickguard decode`` and the benches look it up here).
"""

from __future__ import annotations

from typing import Final

from tickguard.brokers.base import BrokerTraits
from tickguard.brokers.kis.traits import KisTraits
from tickguard.brokers.kiwoom.traits import KiwoomTraits
from tickguard.models import Broker

REGISTRY: Final[dict[Broker, BrokerTraits]] = {
    Broker.KIS: KisTraits(),
    Broker.KIWOOM: KiwoomTraits(),
}
