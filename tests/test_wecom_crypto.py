"""Tests for platforms.wecom.crypto against the shared worked vector and wechatpy 1.8.18."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto

from platforms.wecom.crypto import (
    CryptoError,
    WeComCrypto,
    decrypt_media,
    derive_media_key,
    extract_xml_encrypt,
)


def fixtures_dir() -> Path:
    """The platforms' wire fixtures, kept with the tests (tests/fixtures/platforms)."""
    return Path(__file__).resolve().parent / "fixtures" / "platforms"


@cache
def vector() -> dict[str, Any]:
    return json.loads((fixtures_dir() / "wecom" / "crypto_vector.json").read_text("utf-8"))


def inputs() -> dict[str, str]:
    return vector()["inputs"]


def app_crypto(receive_id: str | None = None) -> WeComCrypto:
    i = inputs()
    rid = i["corpid_receiveid"] if receive_id is None else receive_id
    return WeComCrypto(i["token"], i["encoding_aes_key"], rid)


def aes_key() -> bytes:
    return bytes.fromhex(vector()["derived"]["aes_key_hex"])


def raw_encrypt(key: bytes, padded: bytes) -> bytes:
    """AES-256-CBC with IV = key[:16] and no padding, straight from `cryptography`."""
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return enc.update(padded) + enc.finalize()


def pad32(data: bytes) -> bytes:
    n = 32 - len(data) % 32
    return data + bytes([n]) * n


def signed(crypto: WeComCrypto, encrypted: str) -> tuple[str, str, str, str]:
    """(msg_signature, timestamp, nonce, encrypted) with a correct signature."""
    ts, nonce = "1700000000", "fakenonce1234"
    return crypto.signature(ts, nonce, encrypted), ts, nonce, encrypted


# --- worked vector -------------------------------------------------------------------------


def test_vector_app_callback_decrypts_and_signature_matches() -> None:
    v, i = vector()["app_callback_text"], inputs()
    c = app_crypto()
    assert c.signature(i["timestamp"], i["nonce"], v["encrypt"]) == v["msg_signature"]
    got = c.decrypt(v["msg_signature"], i["timestamp"], i["nonce"], v["encrypt"])
    assert got == v["plaintext_xml"].encode("utf-8")


def test_vector_encrypt_is_byte_exact_with_fixed_random() -> None:
    v, i = vector()["app_callback_text"], inputs()
    got = app_crypto().encrypt(
        v["plaintext_xml"].encode(), i["timestamp"], i["nonce"], random16=b"FAKERANDOM16BYTE"
    )
    assert got == (v["encrypt"], v["msg_signature"])
    r = vector()["passive_reply"]
    got = app_crypto().encrypt(
        r["plaintext_xml"].encode(), r["timestamp"], r["nonce"], r["random16_ascii"].encode()
    )
    assert got == (r["encrypt"], r["msg_signature"])


def test_vector_post_body_extracts_encrypt() -> None:
    body = (fixtures_dir() / "wecom" / "app_encrypted_post_body.xml").read_bytes()
    assert extract_xml_encrypt(body) == vector()["app_callback_text"]["encrypt"]
    body2 = vector()["app_callback_text"]["post_body_xml"].encode()
    assert extract_xml_encrypt(body2) == vector()["app_callback_text"]["encrypt"]


def test_vector_url_verification() -> None:
    v, i = vector()["url_verification"], inputs()
    got = app_crypto().verify_url(v["msg_signature"], i["timestamp"], i["nonce"], v["echostr"])
    assert got == v["echostr_plaintext"]


def test_vector_passive_reply_decrypts() -> None:
    r = vector()["passive_reply"]
    body = r["response_body_xml"].encode()
    enc = extract_xml_encrypt(body)
    assert enc == r["encrypt"]
    got = app_crypto().decrypt(r["msg_signature"], r["timestamp"], r["nonce"], enc)
    assert got == r["plaintext_xml"].encode()


def test_vector_aibot_json_with_empty_receive_id() -> None:
    v, i = vector()["aibot_json_callback"], inputs()
    enc = json.loads(v["post_body_json"])["encrypt"]
    got = app_crypto("").decrypt(v["msg_signature"], i["timestamp"], i["nonce"], enc)
    assert got == v["plaintext_json"].encode()


def test_vector_media_download_decrypts() -> None:
    m = vector()["aibot_media_download"]
    data = base64.b64decode(m["downloaded_bytes_base64"])
    png = (fixtures_dir() / "wecom" / m["source_file"]).read_bytes()
    for key in (inputs()["encoding_aes_key"], aes_key()):
        got = decrypt_media(data, key)
        assert got == png
        assert hashlib.md5(got).hexdigest() == m["plaintext_md5"]


# --- cross-checks with wechatpy ------------------------------------------------------------


def test_our_encrypt_wechatpy_decrypts_app() -> None:
    i = inputs()
    plain = "<xml><Content><![CDATA[签到 ok]]></Content></xml>"
    c = app_crypto()
    body = c.encrypted_xml_reply(plain.encode(), "1700000123", "ournonce")
    theirs = WeChatCrypto(i["token"], i["encoding_aes_key"], i["corpid_receiveid"])
    root = ET.fromstring(body)
    sig, ts, nonce = (root.findtext(t) for t in ("MsgSignature", "TimeStamp", "Nonce"))
    assert (ts, nonce) == ("1700000123", "ournonce")
    assert theirs.decrypt_message(body, sig, ts, nonce) == plain


def test_our_encrypt_wechatpy_decrypts_aibot_json() -> None:
    plain = json.dumps({"msgtype": "text", "text": {"content": "已签到"}}, ensure_ascii=False)
    body = json.loads(app_crypto("").encrypted_json_reply(plain.encode(), "1700000123", "n1"))
    assert set(body) == {"encrypt", "msgsignature", "timestamp", "nonce"}
    assert body["timestamp"] == "1700000123" and body["nonce"] == "n1"
    c = app_crypto("")
    assert c.signature("1700000123", "n1", body["encrypt"]) == body["msgsignature"]
    assert PrpCrypto(aes_key()).decrypt(body["encrypt"], "") == plain


def test_wechatpy_encrypt_we_decrypt_app() -> None:
    i = inputs()
    plain = "<xml><Content><![CDATA[反思 今天]]></Content></xml>"
    theirs = WeChatCrypto(i["token"], i["encoding_aes_key"], i["corpid_receiveid"])
    body = theirs.encrypt_message(plain, "theirnonce", "1700000999")
    enc = extract_xml_encrypt(body.encode())
    assert isinstance(enc, str)
    sig = ET.fromstring(body).findtext("MsgSignature")
    assert app_crypto().decrypt(sig, "1700000999", "theirnonce", enc) == plain.encode()


def test_wechatpy_encrypt_we_decrypt_empty_receive_id() -> None:
    plain = '{"msgtype":"text","text":{"content":"@研修助手 签到"}}'
    enc = PrpCrypto(aes_key()).encrypt(plain, "").decode()
    c = app_crypto("")
    assert c.decrypt(*signed(c, enc)) == plain.encode()


# --- error values --------------------------------------------------------------------------


def test_wrong_signature() -> None:
    v, i = vector()["app_callback_text"], inputs()
    bad = "0" * 40
    assert app_crypto().decrypt(bad, i["timestamp"], i["nonce"], v["encrypt"]) == CryptoError(
        "bad_signature"
    )
    # right signature, other nonce
    got = app_crypto().decrypt(v["msg_signature"], i["timestamp"], "othernonce", v["encrypt"])
    assert got == CryptoError("bad_signature")
    u = vector()["url_verification"]
    got = app_crypto().verify_url(bad, i["timestamp"], i["nonce"], u["echostr"])
    assert got == CryptoError("bad_signature")


def test_wrong_receive_id_both_ways() -> None:
    v, i = vector()["app_callback_text"], inputs()
    got = app_crypto("wwOTHERCORP").decrypt(
        v["msg_signature"], i["timestamp"], i["nonce"], v["encrypt"]
    )
    assert got == CryptoError("bad_receive_id")
    got = app_crypto("").decrypt(v["msg_signature"], i["timestamp"], i["nonce"], v["encrypt"])
    assert got == CryptoError("bad_receive_id")
    a = vector()["aibot_json_callback"]
    got = app_crypto().decrypt(a["msg_signature"], i["timestamp"], i["nonce"], a["encrypt"])
    assert got == CryptoError("bad_receive_id")


def test_truncated_ciphertext() -> None:
    c = app_crypto()
    raw = base64.b64decode(vector()["app_callback_text"]["encrypt"])
    cut3 = base64.b64encode(raw[:-3]).decode()
    assert c.decrypt(*signed(c, cut3)) == CryptoError("bad_length")
    assert c.decrypt(*signed(c, "")) == CryptoError("bad_length")
    cut_block = base64.b64encode(raw[:-16]).decode()
    got = c.decrypt(*signed(c, cut_block))
    assert isinstance(got, CryptoError) and got.reason in {"bad_padding", "bad_frame"}


@pytest.mark.parametrize(
    "tail",
    [
        b"\x00" * 32,  # pad value 0
        bytes([33]) * 32,  # pad value above 32
        b"A" * 27 + b"\x04\x05\x05\x05\x05",  # pad bytes not all equal
    ],
)
def test_bad_padding(tail: bytes) -> None:
    framed = b"R" * 16 + struct.pack(">I", 4) + b"test" + b"x" * 8 + tail
    assert len(framed) % 32 == 0
    enc = base64.b64encode(raw_encrypt(aes_key(), framed)).decode()
    c = app_crypto()
    assert c.decrypt(*signed(c, enc)) == CryptoError("bad_padding")


def test_bad_frame_length_field() -> None:
    framed = pad32(b"R" * 16 + struct.pack(">I", 10_000) + b"short")
    enc = base64.b64encode(raw_encrypt(aes_key(), framed)).decode()
    c = app_crypto()
    assert c.decrypt(*signed(c, enc)) == CryptoError("bad_frame")


@pytest.mark.parametrize("text", ["!!!not base64!!!", "abc", "YWJj ZGVm", "签到签到"])
def test_bad_base64(text: str) -> None:
    c = app_crypto()
    assert c.decrypt(*signed(c, text)) == CryptoError("bad_base64")


def test_verify_url_non_utf8_plaintext() -> None:
    c = app_crypto()
    enc, sig = c.encrypt(b"\xff\xfe", "1", "n")
    assert c.verify_url(sig, "1", "n", enc) == CryptoError("bad_utf8")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml",
        b"<xml><ToUserName>x</ToUserName></xml>",
        b"<xml><Encrypt></Encrypt></xml>",
        b"<other><Encrypt>abc</Encrypt></other>",
        b"\xff\xfe<\x00x\x00",
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
        b"<xml><Encrypt>&lol2;</Encrypt></xml>",
        b'<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><Encrypt>&xxe;</Encrypt></xml>',
    ],
)
def test_extract_xml_rejects(body: bytes) -> None:
    assert extract_xml_encrypt(body) == CryptoError("bad_xml")


def test_reply_xml_refuses_injection() -> None:
    with pytest.raises(ValueError):
        app_crypto().encrypted_xml_reply(b"x", "1700000000", "n]]><Evil/>")
    with pytest.raises(ValueError):
        app_crypto().encrypted_xml_reply(b"x", "<TimeStamp/>", "n")


# --- construction --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["short", "FAKEfakeFAKEfakeFAKEfakeFAKEfake0123456789AB", "!" * 43, "=" * 43]
)
def test_bad_encoding_aes_key_raises_without_leaking(key: str) -> None:
    with pytest.raises(ValueError) as info:
        WeComCrypto("tok", key, "")
    assert key not in str(info.value)


def test_repr_and_random_prefix() -> None:
    c = app_crypto()
    assert inputs()["encoding_aes_key"] not in repr(c) and inputs()["token"] not in repr(c)
    a, _ = c.encrypt(b"same", "1", "n")
    b, _ = c.encrypt(b"same", "1", "n")
    assert a != b  # fresh random prefix each time
    with pytest.raises(ValueError):
        c.encrypt(b"x", "1", "n", random16=b"short")


# --- media ---------------------------------------------------------------------------------


def test_media_round_trip_with_encoding_aes_key_and_ws_aeskey() -> None:
    png = (fixtures_dir() / "wecom" / "tiny_1x1.png").read_bytes()
    # HTTP-callback mode: key derived from the EncodingAESKey
    data = raw_encrypt(aes_key(), pad32(png))
    assert len(data) % 32 == 0
    assert decrypt_media(data, inputs()["encoding_aes_key"]) == png
    # WebSocket mode: a per-message base64 aeskey, with or without '=' padding
    ws_key = os.urandom(32)
    data = raw_encrypt(ws_key, pad32(png))
    b64 = base64.b64encode(ws_key).decode()
    for form in (b64, b64.rstrip("="), base64.urlsafe_b64encode(ws_key).decode()):
        assert derive_media_key(form) == ws_key
        assert decrypt_media(data, form) == png
    assert decrypt_media(data, ws_key) == png
    # aligned input gets a full 32-byte pad block
    aligned = b"z" * 64
    assert decrypt_media(raw_encrypt(ws_key, pad32(aligned)), ws_key) == aligned


def test_media_errors() -> None:
    key = aes_key()
    assert decrypt_media(b"", key) == CryptoError("bad_length")
    assert decrypt_media(b"x" * 17, key) == CryptoError("bad_length")
    assert decrypt_media(b"x" * 32, b"short") == CryptoError("bad_key")
    assert decrypt_media(b"x" * 32, "not a key!") == CryptoError("bad_key")
    assert derive_media_key(base64.b64encode(b"k" * 16).decode()) == CryptoError("bad_key")
    assert decrypt_media(raw_encrypt(key, b"\x00" * 32), key) == CryptoError("bad_padding")


# --- never raise on hostile input ----------------------------------------------------------

_FUZZ = settings(max_examples=300, deadline=None)


@_FUZZ
@given(st.text(), st.text(), st.text(), st.text())
def test_decrypt_random_strings_never_raise(sig: str, ts: str, nonce: str, enc: str) -> None:
    assert isinstance(app_crypto().decrypt(sig, ts, nonce, enc), CryptoError)
    assert isinstance(app_crypto().verify_url(sig, ts, nonce, enc), CryptoError)


@_FUZZ
@given(st.binary(max_size=600), st.sampled_from(["", "wwFAKECORPID000001"]))
def test_decrypt_random_signed_ciphertext_never_raises(raw: bytes, rid: str) -> None:
    c = app_crypto(rid)
    got = c.decrypt(*signed(c, base64.b64encode(raw).decode()))
    assert isinstance(got, (bytes, CryptoError))


@_FUZZ
@given(st.binary(min_size=1, max_size=40).map(lambda b: b * (32 // len(b) + 1)), st.binary())
def test_decrypt_random_plaintext_blocks_never_raise(block: bytes, extra: bytes) -> None:
    # encrypt arbitrary block-aligned plaintext so the padding/frame parser sees garbage
    plain = (block + extra)[: (len(block + extra) // 16) * 16]
    c = app_crypto()
    enc = base64.b64encode(raw_encrypt(aes_key(), plain)).decode()
    assert isinstance(c.decrypt(*signed(c, enc)), (bytes, CryptoError))
    assert isinstance(decrypt_media(raw_encrypt(aes_key(), plain), aes_key()), (bytes, CryptoError))


@_FUZZ
@given(st.binary(max_size=300), st.text(max_size=60))
def test_xml_and_media_random_input_never_raise(data: bytes, key: str) -> None:
    assert isinstance(extract_xml_encrypt(data), (str, CryptoError))
    assert isinstance(decrypt_media(data, key), (bytes, CryptoError))
    assert isinstance(derive_media_key(key), (bytes, CryptoError))
