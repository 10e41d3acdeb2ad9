"""Subscription planner: 41-registration cap, sharding across app keys, refusal before connect."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from tickguard.brokers.base import Channel, Subscription
from tickguard.errors import PlanError
from tickguard.settings import AppCredential
from tickguard.stream.planner import plan_subscriptions

BOTH = [Channel.TRADES, Channel.BOOK]


def creds(n: int) -> list[AppCredential]:
    return [
        AppCredential(name=f"k{i}", app_key=SecretStr(f"key{i}"), app_secret=SecretStr("s"))
        for i in range(n)
    ]


def symbols(n: int) -> list[str]:
    return [f"{i:06d}" for i in range(n)]


def test_twenty_symbols_two_channels_fit_one_kis_session() -> None:
    plan = plan_subscriptions(symbols(20), BOTH, creds(3), 41)
    assert len(plan) == 1
    assert len(plan[0].subscriptions) == 40
    assert plan[0].key_name == "k0"


def test_exactly_41_fit_and_42_need_a_second_key() -> None:
    one = plan_subscriptions(symbols(41), [Channel.TRADES], creds(2), 41)
    assert [len(p.subscriptions) for p in one] == [41]
    two = plan_subscriptions(symbols(21), BOTH, creds(2), 41)
    assert [len(p.subscriptions) for p in two] == [21, 21]
    assert all(len(p.subscriptions) <= 41 for p in two)


def test_sharding_covers_every_subscription_once_and_balances() -> None:
    syms = symbols(100)
    plan = plan_subscriptions(syms, BOTH, creds(5), 41)
    assert len(plan) == 5  # 200 registrations → ceil(200/41) = 5 sessions
    sizes = [len(p.subscriptions) for p in plan]
    assert max(sizes) <= 41 and max(sizes) - min(sizes) <= 1
    every = [s for p in plan for s in p.subscriptions]
    assert len(every) == len(set(every)) == 200
    assert set(every) == {Subscription(s, c) for s in syms for c in BOTH}
    assert len({p.key_name for p in plan}) == 5  # one session per key


def test_duplicates_and_blanks_are_ignored() -> None:
    plan = plan_subscriptions(["005930", " 005930", "", "000660"], BOTH, creds(1), 41)
    assert [s.symbol for s in plan[0].subscriptions] == ["005930", "005930", "000660", "000660"]


def test_a_plan_that_cannot_fit_is_refused_naming_the_keys_needed() -> None:
    with pytest.raises(PlanError, match=r"need 5 app keys.*2 configured"):
        plan_subscriptions(symbols(100), BOTH, creds(2), 41)
    with pytest.raises(PlanError, match="need 1 app keys"):
        plan_subscriptions(symbols(1), BOTH, [], 41)


def test_nothing_to_subscribe_and_duplicate_key_names_are_refused() -> None:
    with pytest.raises(PlanError, match="nothing to subscribe"):
        plan_subscriptions([], BOTH, creds(1), 41)
    twins = creds(1) * 2
    with pytest.raises(PlanError, match="unique"):
        plan_subscriptions(symbols(30), BOTH, twins, 41)
