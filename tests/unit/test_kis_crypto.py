"""AES-256-CBC frames: key/iv from the ack, round trip, missing or wrong keys quarantined."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from tickguard.brokers.kis.codec import KisSession
from tickguard.brokers.kis.crypto import AesKey, decrypt_payload, encrypt_payload
from tickguard.errors import DecodeError
from tickguard.models import Trade

DATA = Path(__file__).resolve().parents[1] / "data" / "kis"
NOW = datetime(2023, 6, 12, 0, 34, tzinfo=UTC)
KEY, IV = "abcdefghijklmnopabcdefghijklmnop", "0123456789abcdef"


def _payload() -> str:
    return (DATA / "h0stcnt0_example.txt").read_text().strip().split("|", 3)[3]


def _ack(key: str = KEY, iv: str = IV) -> str:
    return json.dumps(
        {
            "header": {"tr_id": "H0STCNT0", "tr_key": "005930", "encrypt": "Y"},
            "body": {
                "rt_cd": "0",
                "msg_cd": "OPSP0000",
                "msg1": "SUBSCRIBE SUCCESS",
                "output": {"iv": iv, "key": key},
            },
        }
    )


def test_round_trip() -> None:
    aes = AesKey.from_ack(KEY, IV)
    cipher = encrypt_payload(_payload(), aes)
    assert cipher != _payload()
    assert decrypt_payload(cipher, aes) == _payload()
    assert KEY not in repr(aes)


def test_encrypted_frame_decodes_with_the_key_from_the_ack() -> None:
    session = KisSession(SecretStr("k"), date(2023, 6, 12))
    session.receive(_ack(), NOW)
    frame = "1|H0STCNT0|002|" + encrypt_payload(
        _payload() + "^" + _payload(), AesKey.from_ack(KEY, IV)
    )
    out = session.receive(frame, NOW)
    assert out.quarantined == []
    assert [e.cum_volume for e in out.events if isinstance(e, Trade)] == [3052507, 3052507]


def test_encrypted_frame_before_any_ack_is_quarantined() -> None:
    session = KisSession(SecretStr("k"), date(2023, 6, 12))
    frame = "1|H0STCNT0|001|" + encrypt_payload(_payload(), AesKey.from_ack(KEY, IV))
    out = session.receive(frame, NOW)
    assert [(q.reason, q.raw) for q in out.quarantined] == [("no_key", frame)]


@pytest.mark.parametrize("payload", ["not base64 !!", "QUJD", ""])
def test_garbage_ciphertext_is_quarantined(payload: str) -> None:
    session = KisSession(SecretStr("k"), date(2023, 6, 12))
    session.receive(_ack(), NOW)
    out = session.receive(f"1|H0STCNT0|001|{payload}", NOW)
    assert [q.reason for q in out.quarantined] == ["decrypt_failed"]


def test_wrong_key_never_yields_events() -> None:
    session = KisSession(SecretStr("k"), date(2023, 6, 12))
    session.receive(_ack(key="z" * 32), NOW)
    frame = "1|H0STCNT0|001|" + encrypt_payload(_payload(), AesKey.from_ack(KEY, IV))
    out = session.receive(frame, NOW)
    assert out.events == [] and len(out.quarantined) == 1


def test_ack_with_a_malformed_key_still_acks() -> None:
    session = KisSession(SecretStr("k"), date(2023, 6, 12))
    out = session.receive(_ack(key="short"), NOW)
    assert [a.ok for a in out.acks] == [True]
    assert [q.reason for q in out.quarantined] == ["bad_key"]
    with pytest.raises(DecodeError):
        AesKey.from_ack("short", IV)


def test_keys_are_kept_per_subscription_and_each_one_decrypts() -> None:
    """Acks for two symbols of one TR with different keys: frames under either decode."""
    session = KisSession(SecretStr("k"), date(2023, 6, 12))
    other_key, other_iv = "Q" * 32, "R" * 16
    session.receive(_ack(), NOW)
    session.receive(_ack(key=other_key, iv=other_iv).replace("005930", "000660"), NOW)
    for key, iv in ((KEY, IV), (other_key, other_iv)):
        frame = "1|H0STCNT0|001|" + encrypt_payload(_payload(), AesKey.from_ack(key, iv))
        out = session.receive(frame, NOW)
        assert out.quarantined == [] and len(out.events) == 1
