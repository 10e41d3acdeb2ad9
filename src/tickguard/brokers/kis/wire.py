"""KIS wire vocabulary: TR ids, column layouts and real-time server codes, in KIS's own names.

Nothing here converts anything; it only names what KIS sends so the parsing functions can
refer to columns by KIS's field names instead of magic numbers. Layouts and codes follow
``shared/reference/broker-protocols.md`` §1.6–1.7 (KIS's official sample columns).
"""

from __future__ import annotations

from typing import Final

from tickguard.brokers.base import Channel

TR_TRADES: Final = "H0STCNT0"
"""국내주식 실시간체결가 (KRX)."""
TR_BOOK: Final = "H0STASP0"
"""국내주식 실시간호가 (KRX)."""
TR_PINGPONG: Final = "PINGPONG"

TR_BY_CHANNEL: Final[dict[Channel, str]] = {Channel.TRADES: TR_TRADES, Channel.BOOK: TR_BOOK}
CHANNEL_BY_TR: Final[dict[str, Channel]] = {tr: ch for ch, tr in TR_BY_CHANNEL.items()}

TR_TYPE_SUBSCRIBE: Final = "1"
TR_TYPE_UNSUBSCRIBE: Final = "2"

H0STCNT0_COLUMNS: Final[tuple[str, ...]] = (
    "MKSC_SHRN_ISCD", "STCK_CNTG_HOUR", "STCK_PRPR", "PRDY_VRSS_SIGN", "PRDY_VRSS",
    "PRDY_CTRT", "WGHN_AVRG_STCK_PRC", "STCK_OPRC", "STCK_HGPR", "STCK_LWPR",
    "ASKP1", "BIDP1", "CNTG_VOL", "ACML_VOL", "ACML_TR_PBMN",
    "SELN_CNTG_CSNU", "SHNU_CNTG_CSNU", "NTBY_CNTG_CSNU", "CTTR", "SELN_CNTG_SMTN",
    "SHNU_CNTG_SMTN", "CCLD_DVSN", "SHNU_RATE", "PRDY_VOL_VRSS_ACML_VOL_RATE", "OPRC_HOUR",
    "OPRC_VRSS_PRPR_SIGN", "OPRC_VRSS_PRPR", "HGPR_HOUR", "HGPR_VRSS_PRPR_SIGN", "HGPR_VRSS_PRPR",
    "LWPR_HOUR", "LWPR_VRSS_PRPR_SIGN", "LWPR_VRSS_PRPR", "BSOP_DATE", "NEW_MKOP_CLS_CODE",
    "TRHT_YN", "ASKP_RSQN1", "BIDP_RSQN1", "TOTAL_ASKP_RSQN", "TOTAL_BIDP_RSQN",
    "VOL_TNRT", "PRDY_SMNS_HOUR_ACML_VOL", "PRDY_SMNS_HOUR_ACML_VOL_RATE", "HOUR_CLS_CODE",
    "MRKT_TRTM_CLS_CODE", "VI_STND_PRC",
)  # fmt: skip
"""H0STCNT0 record, 46 fields. Later KIS layouts append columns; these stay the leading ones."""

_LEVELS = range(1, 11)
H0STASP0_COLUMNS: Final[tuple[str, ...]] = (
    "MKSC_SHRN_ISCD", "BSOP_HOUR", "HOUR_CLS_CODE",
    *(f"ASKP{n}" for n in _LEVELS),
    *(f"BIDP{n}" for n in _LEVELS),
    *(f"ASKP_RSQN{n}" for n in _LEVELS),
    *(f"BIDP_RSQN{n}" for n in _LEVELS),
    "TOTAL_ASKP_RSQN", "TOTAL_BIDP_RSQN", "OVTM_TOTAL_ASKP_RSQN", "OVTM_TOTAL_BIDP_RSQN",
    "ANTC_CNPR", "ANTC_CNQN", "ANTC_VOL", "ANTC_CNTG_VRSS", "ANTC_CNTG_VRSS_SIGN",
    "ANTC_CNTG_PRDY_CTRT", "ACML_VOL", "TOTAL_ASKP_RSQN_ICDC", "TOTAL_BIDP_RSQN_ICDC",
    "OVTM_TOTAL_ASKP_ICDC", "OVTM_TOTAL_BIDP_ICDC", "STCK_DEAL_CLS_CODE",
)  # fmt: skip
"""H0STASP0 record, 59 fields (KIS's 2026 layout appends MID_PRC… → 62)."""

KNOWN_WIDTH: Final[dict[str, int]] = {
    TR_TRADES: len(H0STCNT0_COLUMNS),
    TR_BOOK: len(H0STASP0_COLUMNS),
}
"""Narrowest record width we accept per TR: every known leading column must be present."""


class Cnt:
    """Column positions in an H0STCNT0 record."""

    SYMBOL: Final = H0STCNT0_COLUMNS.index("MKSC_SHRN_ISCD")
    HOUR: Final = H0STCNT0_COLUMNS.index("STCK_CNTG_HOUR")
    PRICE: Final = H0STCNT0_COLUMNS.index("STCK_PRPR")
    QTY: Final = H0STCNT0_COLUMNS.index("CNTG_VOL")
    CUM_VOLUME: Final = H0STCNT0_COLUMNS.index("ACML_VOL")
    SIDE: Final = H0STCNT0_COLUMNS.index("CCLD_DVSN")
    DATE: Final = H0STCNT0_COLUMNS.index("BSOP_DATE")
    HALTED: Final = H0STCNT0_COLUMNS.index("TRHT_YN")


class Asp:
    """Column positions in an H0STASP0 record."""

    SYMBOL: Final = H0STASP0_COLUMNS.index("MKSC_SHRN_ISCD")
    HOUR: Final = H0STASP0_COLUMNS.index("BSOP_HOUR")
    ASK_PRICE: Final = H0STASP0_COLUMNS.index("ASKP1")
    BID_PRICE: Final = H0STASP0_COLUMNS.index("BIDP1")
    ASK_QTY: Final = H0STASP0_COLUMNS.index("ASKP_RSQN1")
    BID_QTY: Final = H0STASP0_COLUMNS.index("BIDP_RSQN1")
    TOTAL_ASK: Final = H0STASP0_COLUMNS.index("TOTAL_ASKP_RSQN")
    TOTAL_BID: Final = H0STASP0_COLUMNS.index("TOTAL_BIDP_RSQN")
    HOUR_CLS: Final = H0STASP0_COLUMNS.index("HOUR_CLS_CODE")


# Halt flags (§1.7.1–1.7.2): TRHT_YN 거래정지 여부 Y 정지 / N 정상거래; HOUR_CLS_CODE
# C = 9시이후의 예상가·VI발동 (a single-price period during the session: no trades).
TRHT_YN_HALTED: Final = "Y"
HOUR_CLS_VI: Final = "C"


# CCLD_DVSN 체결구분: 1 매수(+), 3 장전, 5 매도(-).
CCLD_DVSN_BUY: Final = "1"
CCLD_DVSN_SELL: Final = "5"

# Real-time server codes (msg_cd), reference §1.6.
OPSP_SUBSCRIBED: Final = "OPSP0000"
OPSP_UNSUBSCRIBED: Final = "OPSP0001"
OPSP_ALREADY_SUBSCRIBED: Final = "OPSP0002"
OPSP_UNSUBSCRIBE_NOT_FOUND: Final = "OPSP0003"
OPSP_INTERNAL_ERROR: Final = "OPSP0007"
OPSP_MAX_SUBSCRIBE_OVER: Final = "OPSP0008"
OPSP_MCI_SEND_FAILED: Final = "OPSP0009"
OPSP_INVALID_APPKEY: Final = "OPSP0010"
OPSP_INVALID_APPROVAL: Final = "OPSP0011"
OPSP_INVALID_TR_ID: Final = "OPSP8991"
OPSP_INVALID_TR_KEY: Final = "OPSP8992"
OPSP_ALREADY_IN_USE: Final = "OPSP8996"
OPSP_INVALID_TR_TYPE: Final = "OPSP8997"
OPSP_INVALID_CUSTTYPE: Final = "OPSP8998"
OPSP_JSON_PREFIX: Final = "OPSP999"
"""OPSP999x: JSON PARSING ERROR (tr_key/input/body/header not found, invalid json …)."""

OPSP_MESSAGES: Final[dict[str, str]] = {
    OPSP_SUBSCRIBED: "SUBSCRIBE SUCCESS",
    OPSP_UNSUBSCRIBED: "UNSUBSCRIBE SUCCESS",
    OPSP_ALREADY_SUBSCRIBED: "ALREADY IN SUBSCRIBE",
    OPSP_UNSUBSCRIBE_NOT_FOUND: "UNSUBSCRIBE ERROR(not found!)",
    OPSP_INTERNAL_ERROR: "SUBSCRIBE INTERNAL ERROR",
    OPSP_MAX_SUBSCRIBE_OVER: "MAX SUBSCRIBE OVER",
    OPSP_MCI_SEND_FAILED: "SUBSCRIBE ERROR : mci send failed",
    OPSP_INVALID_APPKEY: "SUBSCRIBE WARNING : invalid appkey",
    OPSP_INVALID_APPROVAL: "invalid approval(appkey) : NOT FOUND",
    OPSP_INVALID_TR_ID: "SUBSCRIBE ERROR : invalid tr_id",
    OPSP_INVALID_TR_KEY: "SUBSCRIBE ERROR : invalid tr_key",
    OPSP_ALREADY_IN_USE: "ALREADY IN USE appkey",
    OPSP_INVALID_TR_TYPE: "JSON PARSING ERROR : invalid tr_type",
    OPSP_INVALID_CUSTTYPE: "JSON PARSING ERROR : invalid custtype",
}
"""KIS's msg1 per code: the simulator sends these, the codec only reads ``msg_cd``."""
