"""WeCom callback crypto against the public vectors (wechatpy's tests) and our own round trip."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.wecom.crypto import CallbackRejected, WecomCrypto, signature

TOKEN = "123456"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
CORP_ID = "wx49f0ab532d5d035a"
ECHOSTR = "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="


def crypto() -> WecomCrypto:
    return WecomCrypto(TOKEN, AES_KEY, CORP_ID)


def test_the_public_url_verification_vector_signs_and_decrypts() -> None:
    assert signature(TOKEN, "1411443780", "437374425", ECHOSTR) == (
        "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96"
    )
    echoed = crypto().open(
        "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443780", "437374425", ECHOSTR
    )
    assert echoed == "5927782489442352469"


def test_a_tampered_signature_is_rejected() -> None:
    with pytest.raises(CallbackRejected, match="signature"):
        crypto().open(
            "dd6b9c95b495b3f7e2901bfbc76c664930ffdb97", "1411443780", "437374425", ECHOSTR
        )


def test_a_message_for_another_corp_is_rejected() -> None:
    other = WecomCrypto(TOKEN, AES_KEY, "wwsomeoneelse")
    with pytest.raises(CallbackRejected, match="receive id"):
        other.decrypt(ECHOSTR)


def test_a_flipped_ciphertext_byte_is_rejected_not_misread() -> None:
    import base64

    raw = bytearray(base64.b64decode(ECHOSTR))
    raw[-1] ^= 0x01
    with pytest.raises(CallbackRejected):
        crypto().decrypt(base64.b64encode(bytes(raw)).decode())


@given(st.text(max_size=3000))
def test_our_encrypt_side_round_trips_any_message(message: str) -> None:
    c = crypto()
    assert c.decrypt(c.encrypt(message)) == message


def test_a_known_random_prefix_gives_the_published_ciphertext() -> None:
    """Our encrypt side reproduces the vector byte for byte once its random prefix is known."""
    import base64

    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = base64.b64decode(AES_KEY + "=")
    dec = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    prefix = (dec.update(base64.b64decode(ECHOSTR)) + dec.finalize())[:16]
    assert crypto().encrypt("5927782489442352469", random16=prefix) == ECHOSTR


def test_a_passive_reply_is_sealed_so_that_wecom_can_open_it() -> None:
    import defusedxml.ElementTree as ET

    c = crypto()
    reply = ET.fromstring(c.seal_reply("success", "1411443780", "437374425"))
    encrypted = reply.findtext("Encrypt")
    assert (
        encrypted
        and c.open(reply.findtext("MsgSignature") or "", "1411443780", "437374425", encrypted)
        == "success"
    )
