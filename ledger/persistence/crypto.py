"""Encryption of event state at rest (AES-GCM, the library's format) with key rotation.

``LEDGER_CIPHER_KEY`` (base64 of 32 random bytes) encrypts every new event and snapshot.
After a rotation, the previous keys go in ``LEDGER_CIPHER_OLD_KEYS`` (comma-separated): stored
state is decrypted with the current key first, then each old key (AES-GCM's tag tells a wrong
key at once). Only the ``state`` column is encrypted; ids, topics and versions are not — they
never hold PHI.
"""

from __future__ import annotations

from base64 import b64decode

from eventsourcing.cryptography import AESCipher
from eventsourcing.persistence import Cipher
from eventsourcing.utils import Environment


class RotatingAESCipher(Cipher):
    CIPHER_KEY = "CIPHER_KEY"
    CIPHER_OLD_KEYS = "CIPHER_OLD_KEYS"

    def __init__(self, environment: Environment) -> None:
        current = environment.get(self.CIPHER_KEY)
        if not current:
            raise OSError("'CIPHER_KEY' not in env")
        old = [k.strip() for k in (environment.get(self.CIPHER_OLD_KEYS) or "").split(",")
               if k.strip()]
        self.ciphers = [_aes(k) for k in [current, *old]]

    def encrypt(self, plaintext: bytes) -> bytes:
        return self.ciphers[0].encrypt(plaintext)

    def decrypt(self, ciphertext: bytes) -> bytes:
        error: Exception | None = None
        for cipher in self.ciphers:
            try:
                return cipher.decrypt(ciphertext)
            except ValueError as exc:
                error = exc
        raise ValueError("stored state does not decrypt with any configured key") from error


def _aes(key: str) -> AESCipher:
    raw = b64decode(key.encode("utf8"))
    AESCipher.check_key_size(len(raw))
    return AESCipher(Environment(env={"CIPHER_KEY": key}))


def new_key() -> str:
    return AESCipher.create_key(32)
