"""No input makes the KIS codec raise, and every frame leaves a trace (nothing silent)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from tickguard.brokers.base import Decoded
from tickguard.brokers.kis.codec import KisSession

DATA = Path(__file__).resolve().parents[1] / "data" / "kis"
SESSION_LINES = (DATA / "session.txt").read_text().splitlines()
NOW = datetime(2023, 6, 12, 0, 34, tzinfo=UTC)

_field = st.one_of(
    st.sampled_from(["", "0", "1", "5", "-1", "093354", "20230612", "005930", "71,900", "(null)"]),
    st.text(alphabet='0123456789-+.^|{}" ab', max_size=10),
)
_data_frame = st.builds(
    lambda flag, tr, count, fields: f"{flag}|{tr}|{count}|" + "^".join(fields),
    st.sampled_from(["0", "1", "01", "0 "]),
    st.sampled_from(["H0STCNT0", "H0STASP0", "PINGPONG", "", "H0STCNI0"]),
    st.sampled_from(["001", "002", "003", "000", "-01", "1e3", "", "999"]),
    st.lists(_field, max_size=200),
)
_mutated = st.builds(
    lambda line, cut, insert: line[:cut] + insert + line[cut + 1 :],
    st.sampled_from(SESSION_LINES),
    st.integers(min_value=0, max_value=900),
    st.text(max_size=3),
)
_json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "header",
                    "body",
                    "tr_id",
                    "tr_key",
                    "output",
                    "iv",
                    "key",
                    "msg_cd",
                    "rt_cd",
                    "msg1",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
).map(lambda doc: __import__("json").dumps(doc))


def _left_a_trace(out: Decoded) -> bool:
    return bool(out.events or out.acks or out.controls or out.quarantined)


def _check(session: KisSession, raw: str | bytes) -> None:
    out = session.receive(raw, NOW)
    assert _left_a_trace(out), raw
    for event in out.events:
        assert event.ts.utcoffset() is not None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    raw=st.one_of(st.text(max_size=400), st.binary(max_size=400), _data_frame, _mutated, _json_like)
)
def test_codec_never_raises_and_never_drops_silently(raw: str | bytes) -> None:
    session = KisSession(SecretStr("k"), date(2023, 6, 12))
    session.receive(SESSION_LINES[0], NOW)  # an ack: AES key known, so '1|' frames get decrypted
    _check(session, raw)
