"""Plugin secrets at rest: Fernet (AES-128-CBC with HMAC-SHA256) with a key in the data dir.

The key lives in `<data dir>/secret.key`, created with mode 0600 the first time a secret is
stored or read. Whoever can read that file can read the secrets: back it up with the
database, and keep it out of shared folders. A lost key means the secrets must be entered
again (the rest of the plugin's configuration stays usable).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from ..errors import KanbanError

KEY_FILE = "secret.key"


class SecretUnreadable(KanbanError):
    """A stored secret does not decrypt with this key (the key file was replaced or lost)."""

    status_code = 409


class SecretBox:
    """Encrypts and decrypts plugin secrets with the key in `path` (made on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fernet: Fernet | None = None
        self._lock = threading.Lock()

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> SecretBox:
        return cls(Path(data_dir) / KEY_FILE)

    def _key(self) -> Fernet:
        with self._lock:
            if self._fernet is None:
                self._fernet = Fernet(self._load_or_create())
            return self._fernet

    def _load_or_create(self) -> bytes:
        try:
            return self._read()
        except FileNotFoundError:
            pass
        self.path.parent.mkdir(parents=True, exist_ok=True)
        key = Fernet.generate_key()
        try:
            # O_EXCL: if another process made the key meanwhile, use that one.
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return self._read()
        with os.fdopen(fd, "wb") as file:
            file.write(key + b"\n")
        return key

    def _read(self) -> bytes:
        key = self.path.read_bytes().strip()
        try:
            Fernet(key)
        except ValueError:
            raise KanbanError(
                f"{self.path} does not hold a valid key (32 url-safe base64-encoded bytes); "
                "restore it from a backup, or move it away to start with a new key"
            ) from None
        return key

    def encrypt(self, value: str) -> str:
        return self._key().encrypt(value.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str, what: str = "a secret") -> str:
        try:
            return self._key().decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError, UnicodeError):
            raise SecretUnreadable(
                f"{what} cannot be decrypted with the key in {self.path} (was the key file replaced?); "
                "enter the value again"
            ) from None
