"""WeCom (企业微信) callback crypto, from WeCom's published scheme.

msg_signature = SHA-1 over the sorted strings token, timestamp, nonce and the ciphertext.
Ciphertext = base64(AES-256-CBC(key, iv = key[:16], PKCS#7 to 32-byte blocks,
  16 random bytes + 4-byte big-endian length + message + receive id)),
with key = base64-decode(EncodingAESKey + "="). The receive id must be our corp id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32  # WeCom pads to 32 bytes, not AES's 16


class CallbackRejected(Exception):
    """A callback we must not act on (HTTP 401, nothing recorded). The reason is for logs;
    it never contains the payload."""


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypted])).encode()).hexdigest()


def _pad(data: bytes) -> bytes:
    n = BLOCK - len(data) % BLOCK
    return data + bytes([n]) * n


def _unpad(data: bytes) -> bytes:
    n = data[-1] if data else 0
    if not 1 <= n <= BLOCK or data[-n:] != bytes([n]) * n:
        raise CallbackRejected("bad padding")
    return data[:-n]


class WecomCrypto:
    def __init__(self, token: str, encoding_aes_key: str, receive_id: str):
        key = base64.b64decode(encoding_aes_key + "=")
        if len(key) != 32:
            raise ValueError("the EncodingAESKey must decode to 32 bytes (43 characters)")
        self.token = token
        self.receive_id = receive_id
        self._key = key

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypted: str) -> None:
        expected = signature(self.token, timestamp, nonce, encrypted)
        if not hmac.compare_digest(expected, (msg_signature or "").lower()):
            raise CallbackRejected("signature mismatch")

    def decrypt(self, encrypted: str) -> str:
        try:
            raw = base64.b64decode(encrypted, validate=True)
        except ValueError:
            raise CallbackRejected("ciphertext is not base64") from None
        if not raw or len(raw) % 16:
            raise CallbackRejected("ciphertext has a bad length")
        decryptor = self._cipher().decryptor()
        plain = _unpad(decryptor.update(raw) + decryptor.finalize())
        if len(plain) < 20:
            raise CallbackRejected("plaintext too short")
        (length,) = struct.unpack(">I", plain[16:20])
        message, receive_id = plain[20 : 20 + length], plain[20 + length :]
        if len(message) != length or not hmac.compare_digest(receive_id, self.receive_id.encode()):
            raise CallbackRejected("receive id does not match the configured corp id")
        return message.decode()

    def encrypt(self, message: str, random16: bytes | None = None) -> str:
        body = message.encode()
        plain = (random16 or os.urandom(16)) + struct.pack(">I", len(body)) + body
        plain += self.receive_id.encode()
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(_pad(plain)) + encryptor.finalize()).decode()

    def open(self, msg_signature: str, timestamp: str, nonce: str, encrypted: str) -> str:
        """Verify, then decrypt: what a callback handler calls."""
        self.verify(msg_signature, timestamp, nonce, encrypted)
        return self.decrypt(encrypted)

    def seal_reply(self, message: str, timestamp: str, nonce: str) -> str:
        """A passive reply in the encrypted XML form WeCom expects."""
        encrypted = self.encrypt(message)
        sig = signature(self.token, timestamp, nonce, encrypted)
        return (
            f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt>"
            f"<MsgSignature><![CDATA[{sig}]]></MsgSignature>"
            f"<TimeStamp>{timestamp}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>"
        )


def plain_signature(token: str, timestamp: str, nonce: str) -> str:
    """Official Account plain mode (明文模式): SHA-1 over the sorted token, timestamp, nonce."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()


def verify_plain(token: str, received: str, timestamp: str, nonce: str) -> None:
    if not hmac.compare_digest(plain_signature(token, timestamp, nonce), (received or "").lower()):
        raise CallbackRejected("signature mismatch")
