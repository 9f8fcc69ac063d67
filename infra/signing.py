"""The keys that sign what scrm vouches for: the store's checkpoints and archive exports.

Two keys, both in PEM files in one directory (`SCRM_SIGNING_KEY_DIR`):
- `ed25519.key` signs everything (a regulator checks it with `openssl pkeyutl -verify -rawin`);
- `p256.key` (ECDSA P-256, SHA-256, DER signatures) signs exports too, for verifiers whose
  OpenSSL predates Ed25519 (`openssl dgst -sha256 -verify`).
`*.pub` beside them are their public halves. A key is named by its fingerprint: the SHA-256 of
its public key in DER (SubjectPublicKeyInfo), which a regulator computes with
`openssl pkey -pubin -in ed25519.pub -outform DER | sha256sum`.

Rotation: move the old `*.pub` into `retired/` and put new keys in place. What the old keys
signed still verifies, because retired public keys stay trusted for verification; nothing new
is signed with them (docs/audit.md).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


def fingerprint(public: PublicKey) -> str:
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def public_pem(public: PublicKey) -> bytes:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public(pem: bytes) -> PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
        raise ValueError("not an Ed25519 or ECDSA public key")
    return key


def verify(public: PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        if isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(signature, data)
        else:
            public.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class SigningKeys:
    ed25519: ed25519.Ed25519PrivateKey
    p256: ec.EllipticCurvePrivateKey
    retired: tuple[PublicKey, ...] = ()

    @property
    def ed25519_id(self) -> str:
        return fingerprint(self.ed25519.public_key())

    @property
    def p256_id(self) -> str:
        return fingerprint(self.p256.public_key())

    def sign_ed25519(self, data: bytes) -> bytes:
        return self.ed25519.sign(data)

    def sign_p256(self, data: bytes) -> bytes:
        return self.p256.sign(data, ec.ECDSA(hashes.SHA256()))

    def trusted(self) -> dict[str, PublicKey]:
        """Every key whose signatures count, by fingerprint: the current ones and the
        retired ones (so what they signed before a rotation still verifies)."""
        keys: list[PublicKey] = [self.ed25519.public_key(), self.p256.public_key()]
        keys += self.retired
        return {fingerprint(k): k for k in keys}

    @classmethod
    def load(cls, directory: Path) -> SigningKeys:
        """The keys in `directory`, made there first if it holds none (the embedded default)."""
        directory.mkdir(parents=True, exist_ok=True)
        ed_path, p256_path = directory / "ed25519.key", directory / "p256.key"
        if not ed_path.exists():
            _write_private(ed_path, ed25519.Ed25519PrivateKey.generate())
        if not p256_path.exists():
            _write_private(p256_path, ec.generate_private_key(ec.SECP256R1()))
        ed = serialization.load_pem_private_key(ed_path.read_bytes(), password=None)
        p256 = serialization.load_pem_private_key(p256_path.read_bytes(), password=None)
        if not isinstance(ed, ed25519.Ed25519PrivateKey):
            raise ValueError(f"{ed_path} is not an Ed25519 private key")
        if not isinstance(p256, ec.EllipticCurvePrivateKey) or p256.curve.name != "secp256r1":
            raise ValueError(f"{p256_path} is not an ECDSA P-256 private key")
        for path, key in ((directory / "ed25519.pub", ed), (directory / "p256.pub", p256)):
            if not path.exists():
                path.write_bytes(public_pem(key.public_key()))
        retired_dir = directory / "retired"
        retired = (
            tuple(load_public(p.read_bytes()) for p in sorted(retired_dir.glob("*.pub")))
            if retired_dir.is_dir()
            else ()
        )
        return cls(ed25519=ed, p256=p256, retired=retired)


def _write_private(path: Path, key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
