"""The raw recorder keeps sent frames without their credentials (found by the secrets audit:
every KIS subscription carries the approval key, Kiwoom's LOGIN the access token)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr

from tickguard.brokers.base import Channel, Subscription
from tickguard.brokers.kis.codec import KisSession
from tickguard.brokers.kiwoom.codec import KiwoomSession
from tickguard.settings import StreamSettings
from tickguard.stream.recorder import REDACTED, RawRecorder, read_recording, recordings

AT = datetime(2026, 11, 26, 0, 30, tzinfo=UTC)
APPROVAL, TOKEN = "approval-5f1e-secret", "kiwoom-token-8c2d-secret"


def test_sent_frames_are_recorded_without_approval_key_or_token(tmp_path: Path) -> None:
    day = AT.date()
    kis = KisSession(SecretStr(APPROVAL), day).subscribe([Subscription("005930", Channel.TRADES)])
    kiwoom = KiwoomSession(TOKEN, day).handshake()
    sent = [*kis, *kiwoom, '{"trnm":"PING"}', "not json but a token=x"]
    rec = RawRecorder(tmp_path, StreamSettings())
    for frame in sent:
        rec.record(True, AT, frame)
    rec.record(False, AT, '{"trnm":"LOGIN","return_code":0}')
    rec.close()
    got = [f.raw for p in recordings(tmp_path) for f in read_recording(p)]
    assert all(APPROVAL not in str(g) and TOKEN not in str(g) for g in got)
    kis_doc, login = json.loads(str(got[0])), json.loads(str(got[1]))
    assert kis_doc["header"]["approval_key"] == REDACTED
    assert kis_doc["body"]["input"] == {"tr_id": "H0STCNT0", "tr_key": "005930"}
    assert login == {"trnm": "LOGIN", "token": REDACTED}
    assert got[2:] == ['{"trnm":"PING"}', REDACTED, '{"trnm":"LOGIN","return_code":0}']
