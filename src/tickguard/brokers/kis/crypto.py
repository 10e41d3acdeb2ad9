"""AES-256-CBC of KIS's encrypted real-time frames (flag ``1``).

KIS hands a 32-character key and a 16-character IV in every SUBSCRIBE SUCCESS ack; an
encrypted frame's payload is base64 of the AES-256-CBC ciphertext with PKCS#7 padding
(reference §1.7.3). Both directions live here so the simulator encrypts exactly the way the
codec decrypts.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tickguard.errors import DecodeError

KEY_LEN = 32
IV_LEN = 16


@dataclass(frozen=True, slots=True)
class AesKey:
    """One stream's key and IV, as the ack's ASCII text turned into bytes."""

    key: bytes
    iv: bytes

    def __repr__(self) -> str:  # keys are secrets: never print them
        return "AesKey(<hidden>)"

    @classmethod
    def from_ack(cls, key: str, iv: str) -> AesKey:
        """Validate the ack's ``output.key``/``output.iv`` (32 and 16 ASCII characters)."""
        key_b, iv_b = key.encode("utf-8"), iv.encode("utf-8")
        if len(key_b) != KEY_LEN or len(iv_b) != IV_LEN:
            raise DecodeError("bad_key", f"key {len(key_b)} bytes, iv {len(iv_b)} bytes")
        return cls(key_b, iv_b)


def encrypt_payload(plaintext: str, aes: AesKey) -> str:
    """Plaintext payload → base64 ciphertext, as KIS sends it after ``1|TR|NNN|``."""
    padder = padding.PKCS7(algorithms.AES.block_size).padder()
    padded = padder.update(plaintext.encode("utf-8")) + padder.finalize()
    encryptor = Cipher(algorithms.AES(aes.key), modes.CBC(aes.iv)).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode("ascii")


def decrypt_payload(payload: str, aes: AesKey) -> str:
    """base64 ciphertext → plaintext payload; any failure is a :class:`DecodeError`."""
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError("decrypt_failed", "payload is not base64") from exc
    if not data or len(data) % (algorithms.AES.block_size // 8):
        raise DecodeError("decrypt_failed", f"ciphertext of {len(data)} bytes")
    decryptor = Cipher(algorithms.AES(aes.key), modes.CBC(aes.iv)).decryptor()
    unpadder = padding.PKCS7(algorithms.AES.block_size).unpadder()
    try:
        padded = decryptor.update(data) + decryptor.finalize()
        plain = unpadder.update(padded) + unpadder.finalize()
        return plain.decode("utf-8")
    except ValueError as exc:  # bad padding or not UTF-8: wrong key or corrupt frame
        raise DecodeError("decrypt_failed", type(exc).__name__) from exc
