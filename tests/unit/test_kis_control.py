"""KIS control traffic: subscribe messages, acks, every OPSP code, PINGPONG echo."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from tickguard.brokers.base import Ack, Channel, Control, ControlKind, Subscription
from tickguard.brokers.kis import wire
from tickguard.brokers.kis.codec import KisSession

DATA = Path(__file__).resolve().parents[1] / "data" / "kis"
NOW = datetime(2023, 6, 12, 0, 34, tzinfo=UTC)
SAMSUNG_TRADES = Subscription("005930", Channel.TRADES)


@pytest.fixture
def session() -> KisSession:
    return KisSession(SecretStr("approval-key-123"), date(2023, 6, 12), custtype="P")


def _ack(code: str, *, rt_cd: str = "1", tr_id: str = "H0STCNT0", tr_key: str = "005930") -> str:
    body: dict[str, object] = {
        "rt_cd": rt_cd,
        "msg_cd": code,
        "msg1": wire.OPSP_MESSAGES.get(code, "?"),
    }
    return json.dumps({"header": {"tr_id": tr_id, "tr_key": tr_key, "encrypt": "N"}, "body": body})


def test_subscribe_and_unsubscribe_messages_follow_kis(session: KisSession) -> None:
    book = Subscription("000660", Channel.BOOK)
    sub = [json.loads(m) for m in session.subscribe([SAMSUNG_TRADES, book])]
    assert sub[0] == {
        "header": {
            "approval_key": "approval-key-123",
            "custtype": "P",
            "tr_type": "1",
            "content-type": "utf-8",
        },
        "body": {"input": {"tr_id": "H0STCNT0", "tr_key": "005930"}},
    }
    assert sub[1]["body"]["input"] == {"tr_id": "H0STASP0", "tr_key": "000660"}
    (unsub,) = [json.loads(m) for m in session.unsubscribe([book])]
    assert unsub["header"]["tr_type"] == "2"
    assert session.handshake() == []
    assert "approval-key-123" not in repr(session)


def test_kis_example_ack_is_a_successful_subscription(session: KisSession) -> None:
    out = session.receive((DATA / "ack_subscribe_example.json").read_text(), NOW)
    assert out.acks == [Ack(SAMSUNG_TRADES, True, "OPSP0000", "SUBSCRIBE SUCCESS")]
    assert out.events == out.controls == out.quarantined == out.replies == []


@pytest.mark.parametrize(
    ("code", "rt_cd", "ok", "unsubscribe"),
    [
        ("OPSP0000", "0", True, False),
        ("OPSP0001", "0", True, True),
        ("OPSP0002", "1", True, False),  # already subscribed: the subscription holds
        ("OPSP0003", "1", True, True),  # unsubscribe of something absent: it is absent
        ("OPSP0007", "1", False, False),
        ("OPSP0008", "1", False, False),
        ("OPSP0009", "1", False, False),
        ("OPSP8991", "1", False, False),
        ("OPSP8992", "1", False, False),
        ("OPSP8997", "1", False, False),
        ("OPSP8998", "1", False, False),
        ("OPSP9993", "1", False, False),
        ("OPSP0008", "0", False, False),  # a known error code wins over an odd rt_cd
        ("OPSP4242", "9", False, False),  # unknown code: rt_cd decides
        ("OPSP4242", "0", True, False),
    ],
)
def test_every_opsp_code_maps_to_an_ack(
    session: KisSession, code: str, rt_cd: str, ok: bool, unsubscribe: bool
) -> None:
    out = session.receive(_ack(code, rt_cd=rt_cd), NOW)
    (ack,) = out.acks
    assert (ack.subscription, ack.ok, ack.code, ack.unsubscribe) == (
        SAMSUNG_TRADES,
        ok,
        code,
        unsubscribe,
    )
    assert out.controls == [] and out.quarantined == []


def test_already_in_use_is_a_session_conflict_not_an_ack(session: KisSession) -> None:
    out = session.receive(_ack("OPSP8996"), NOW)
    assert out.acks == []
    assert out.controls == [
        Control(ControlKind.SESSION_CONFLICT, "OPSP8996", "ALREADY IN USE appkey")
    ]


@pytest.mark.parametrize("code", ["OPSP0010", "OPSP0011"])
def test_invalid_approval_refuses_and_reports_failed_login(session: KisSession, code: str) -> None:
    out = session.receive(_ack(code), NOW)
    assert [a.ok for a in out.acks] == [False]
    assert [c.kind for c in out.controls] == [ControlKind.LOGIN_FAILED]


def test_refused_unsubscribe_is_reported_as_an_unsubscribe(session: KisSession) -> None:
    session.unsubscribe([SAMSUNG_TRADES])
    (ack,) = session.receive(_ack("OPSP0007"), NOW).acks
    assert not ack.ok and ack.unsubscribe
    (again,) = session.receive(_ack("OPSP0007"), NOW).acks  # the request was answered once
    assert not again.unsubscribe


def test_ack_of_a_tr_we_do_not_subscribe_has_no_subscription(session: KisSession) -> None:
    (ack,) = session.receive(
        _ack("OPSP0000", rt_cd="0", tr_id="H0STCNI0", tr_key="htsid"), NOW
    ).acks
    assert ack.subscription is None and ack.ok


def test_pingpong_is_echoed_as_the_same_text(session: KisSession) -> None:
    raw = (DATA / "pingpong.json").read_text().strip()
    out = session.receive(raw, NOW)
    assert out.replies == [raw]
    assert out.controls == [Control(ControlKind.HEARTBEAT, "PINGPONG", "20230612093400")]
    assert out.acks == out.quarantined == []


def test_pingpong_bytes_are_echoed_as_text(session: KisSession) -> None:
    raw = '{"header": {"tr_id": "PINGPONG", "datetime": "20230612093500"}}'
    assert session.receive(raw.encode(), NOW).replies == [raw]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_control"),
        ('{"body": {}}', "bad_control"),
        ('{"header": {"tr_id": ["x"]}}', "bad_control"),
        ('{"header": {"tr_id": "H0STCNT0"}, "body": "text"}', "bad_control"),
    ],
)
def test_malformed_control_is_quarantined(session: KisSession, raw: str, reason: str) -> None:
    out = session.receive(raw, NOW)
    assert [(q.raw, q.reason) for q in out.quarantined] == [(raw, reason)]


def test_unexpected_bodyless_control_is_info(session: KisSession) -> None:
    out = session.receive('{"header": {"tr_id": "H0STMKO0"}}', NOW)
    assert [c.kind for c in out.controls] == [ControlKind.INFO]
    assert out.replies == []
