"""WeCom callback crypto (WXBizMsgCrypt) for the self-built app (XML) and the AI bot (JSON).

Scheme (see docs/platforms/wecom.md §3): AESKey = b64decode(EncodingAESKey + "="),
AES-256-CBC with IV = AESKey[:16], PKCS#7 padding to a multiple of **32** bytes, plaintext
``random16 ‖ uint32_be(len(msg)) ‖ msg ‖ receiveid``, signature = sha1 of the sorted
concatenation of token, timestamp, nonce and the base64 ciphertext.

Bad input never raises: decoders return a `CryptoError` value whose `reason` never
contains key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = [
    "CryptoError",
    "WeComCrypto",
    "decrypt_media",
    "derive_media_key",
    "extract_xml_encrypt",
]

_PAD_BLOCK = 32  # WeCom pads to 32 bytes although the AES block is 16


@dataclass(frozen=True, slots=True)
class CryptoError:
    """Why a decode failed: bad_signature, bad_base64, bad_length, bad_padding, bad_frame,
    bad_receive_id, bad_utf8, bad_xml, bad_key."""

    reason: str


def _aes_cbc(key: bytes, data: bytes, *, encrypt: bool) -> bytes:
    """Raw AES-256-CBC (no padding) with IV = key[:16]; len(data) must be a multiple of 16."""
    cipher = Cipher(algorithms.AES(key), modes.CBC(key[:16]))
    ctx = cipher.encryptor() if encrypt else cipher.decryptor()
    return ctx.update(data) + ctx.finalize()


def _pad32(data: bytes) -> bytes:
    """PKCS#7 to a multiple of 32 (pad value 1..32, a full block when aligned)."""
    n = _PAD_BLOCK - len(data) % _PAD_BLOCK
    return data + bytes([n]) * n


def _unpad32(data: bytes) -> bytes | CryptoError:
    """Strip 32-byte-block PKCS#7 by hand; every pad byte must equal the pad value."""
    if not data:
        return CryptoError("bad_padding")
    n = data[-1]
    if not 1 <= n <= _PAD_BLOCK or n > len(data) or data[-n:] != bytes([n]) * n:
        return CryptoError("bad_padding")
    return data[:-n]


def _b64decode(text: str) -> bytes | CryptoError:
    """Strict standard base64 (no stray characters); errors become CryptoError."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return CryptoError("bad_base64")


def _utf8(text: str) -> bytes:
    """UTF-8 bytes of any str (lone surrogates pass through instead of raising)."""
    return text.encode("utf-8", "surrogatepass")


class WeComCrypto:
    """Signs, encrypts and decrypts WeCom callbacks for one Token/EncodingAESKey/receiveid.

    receive_id is the corpid for a self-built app and "" for the AI bot.
    """

    __slots__ = ("_key", "_receive_id", "_token")

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        if not token:
            raise ValueError("WeCom token must not be empty")
        if len(encoding_aes_key) != 43:
            raise ValueError(
                f"WeCom EncodingAESKey must be 43 characters, got {len(encoding_aes_key)}"
            )
        key = _b64decode(encoding_aes_key + "=")
        if isinstance(key, CryptoError) or len(key) != 32:
            raise ValueError("WeCom EncodingAESKey is not valid base64 for a 32-byte key")
        self._token = token
        self._key = key
        self._receive_id = _utf8(receive_id)

    def __repr__(self) -> str:
        return "WeComCrypto(<redacted>)"

    def signature(self, timestamp: str, nonce: str, encrypted: str) -> str:
        """sha1 hex of the lexicographically sorted concatenation of token, timestamp, nonce, encrypt."""
        joined = "".join(sorted([self._token, timestamp, nonce, encrypted]))
        return hashlib.sha1(_utf8(joined)).hexdigest()

    def verify_url(
        self, msg_signature: str, timestamp: str, nonce: str, echostr: str
    ) -> str | CryptoError:
        """Check and decrypt the URL-verification echostr (already URL-decoded); answer with the result."""
        plain = self.decrypt(msg_signature, timestamp, nonce, echostr)
        if isinstance(plain, CryptoError):
            return plain
        try:
            return plain.decode("utf-8")
        except UnicodeDecodeError:
            return CryptoError("bad_utf8")

    def decrypt(
        self, msg_signature: str, timestamp: str, nonce: str, encrypted: str
    ) -> bytes | CryptoError:
        """Verify msg_signature over `encrypted`, then decrypt it and return the msg bytes."""
        expected = self.signature(timestamp, nonce, encrypted)
        if not hmac.compare_digest(_utf8(expected), _utf8(msg_signature)):
            return CryptoError("bad_signature")
        raw = _b64decode(encrypted)
        if isinstance(raw, CryptoError):
            return raw
        if not raw or len(raw) % 16:
            return CryptoError("bad_length")
        plain = _unpad32(_aes_cbc(self._key, raw, encrypt=False))
        if isinstance(plain, CryptoError):
            return plain
        if len(plain) < 20:
            return CryptoError("bad_frame")
        (msg_len,) = struct.unpack(">I", plain[16:20])
        if 20 + msg_len > len(plain):
            return CryptoError("bad_frame")
        msg, receive_id = plain[20 : 20 + msg_len], plain[20 + msg_len :]
        if not hmac.compare_digest(receive_id, self._receive_id):
            return CryptoError("bad_receive_id")
        return msg

    def encrypt(
        self, plaintext: bytes, timestamp: str, nonce: str, random16: bytes | None = None
    ) -> tuple[str, str]:
        """Encrypt `plaintext`; return (base64 Encrypt, msg_signature). random16 is for tests only."""
        prefix = secrets.token_bytes(16) if random16 is None else random16
        if len(prefix) != 16:
            raise ValueError("random16 must be exactly 16 bytes")
        framed = prefix + struct.pack(">I", len(plaintext)) + plaintext + self._receive_id
        encrypted = base64.b64encode(_aes_cbc(self._key, _pad32(framed), encrypt=True)).decode()
        return encrypted, self.signature(timestamp, nonce, encrypted)

    def encrypted_json_reply(self, plaintext: bytes, timestamp: str, nonce: str) -> str:
        """AI-bot passive reply body {"encrypt","msgsignature","timestamp","nonce"} (all strings)."""
        encrypted, sig = self.encrypt(plaintext, timestamp, nonce)
        return json.dumps(
            {"encrypt": encrypted, "msgsignature": sig, "timestamp": timestamp, "nonce": nonce}
        )

    def encrypted_xml_reply(self, plaintext: bytes, timestamp: str, nonce: str) -> str:
        """Self-built-app passive reply body <xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/></xml>."""
        if not (timestamp.isascii() and timestamp.isdigit()) or "]]>" in nonce:
            raise ValueError("timestamp must be ASCII digits and nonce must not contain ']]>'")
        encrypted, sig = self.encrypt(plaintext, timestamp, nonce)
        return (
            f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt>"
            f"<MsgSignature><![CDATA[{sig}]]></MsgSignature>"
            f"<TimeStamp>{timestamp}</TimeStamp>"
            f"<Nonce><![CDATA[{nonce}]]></Nonce></xml>"
        )


def extract_xml_encrypt(body: bytes) -> str | CryptoError:
    """Return the <Encrypt> text of a POSTed callback body; DOCTYPE/ENTITY are refused."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return CryptoError("bad_xml")
    # No DTD means no entity definitions: blocks billion-laughs and external entities.
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        return CryptoError("bad_xml")
    try:
        root = ET.fromstring(text)  # str input is parsed as UTF-8 whatever the declaration says
    except (ET.ParseError, ValueError):
        return CryptoError("bad_xml")
    node = root.find("Encrypt") if root.tag == "xml" else None
    if node is None or not node.text or not node.text.strip():
        return CryptoError("bad_xml")
    return node.text.strip()


def derive_media_key(encoding_aes_key_or_aeskey: str) -> bytes | CryptoError:
    """32-byte media key from the 43-char EncodingAESKey (HTTP mode) or a per-message base64
    `aeskey` (WebSocket mode): '=' padding is added when missing, URL-safe letters accepted."""
    text = encoding_aes_key_or_aeskey.strip().rstrip("=").replace("-", "+").replace("_", "/")
    key = _b64decode(text + "=" * (-len(text) % 4))
    if isinstance(key, CryptoError) or len(key) != 32:
        return CryptoError("bad_key")
    return key


def decrypt_media(data: bytes, key: bytes | str) -> bytes | CryptoError:
    """Decrypt a downloaded AI-bot image/file: AES-256-CBC, IV = key[:16], PKCS#7 (32).

    `key` is the raw 32-byte key, or a string passed through `derive_media_key`.
    """
    if isinstance(key, str):
        derived = derive_media_key(key)
        if isinstance(derived, CryptoError):
            return derived
        key = derived
    if len(key) != 32:
        return CryptoError("bad_key")
    if not data or len(data) % 16:
        return CryptoError("bad_length")
    return _unpad32(_aes_cbc(key, data, encrypt=False))
