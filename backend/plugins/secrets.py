"""Plugin secrets at rest: Fernet (AES-128-CBC with HMAC-SHA256) with a key in the data dir.

The key lives in `<data dir>/secret.key`, created with mode 0600 the first time a secret is
stored or read. Whoever can read that file can read the secrets: back it up with the
database, and keep it out of shared folders. A lost key means the secrets must be entered
again (the rest of the plugin's configuration stays usable).
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

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


# --------------------------------------------------------------------------- redaction

REDACTED = "[secret]"
MIN_SECRET = 4  # shorter values are not hidden in text: they would hide half of every message
FRAGMENT = 8  # letters and digits: a piece of a secret this long is hidden wherever it appears


class Redactor:
    """Hides secret values in text a plugin's server wrote (its stderr, its tools' descriptions).

    Why redact rather than store none of that text: a connection test's output is how people
    find out why a server does not start, and the usual reason (a wrong key) is what the server
    says on stderr. Whoever can use the API can also change the plugin's command and run
    anything with its secrets (plugins are commands), so this cannot stop a person who wants a
    secret; it keeps a server that echoes its configuration from putting the secret on the
    board. So it matches the forms such echoes take, not only the exact value:

    - any case, and split: letters and digits are compared without case and without the
      characters between them (`S3CR-3T`, one half per line), and every piece of at least
      `FRAGMENT` of them that occurs in a secret is hidden;
    - encoded: hex, base64 and base64url (at each of the three byte alignments, so also inside
      `base64(user:secret)`), percent-encoding, JSON string escapes.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        self.forms: list[str] = []
        for secret in secrets:
            if len(secret) >= MIN_SECRET:
                self.forms.extend(form for form in map(_letters_and_digits, _forms(secret)) if form)
        self.forms = sorted(set(self.forms), key=len, reverse=True)
        self.grams: dict[int, set[str]] = {}
        for form in self.forms:
            size = min(FRAGMENT, len(form))
            self.grams.setdefault(size, set()).update(form[i : i + size] for i in range(len(form) - size + 1))

    def __call__(self, text: str) -> str:
        if not self.forms or not text:
            return text
        kept = [i for i, char in enumerate(text) if char.isalnum()]
        folded = "".join(text[i] for i in kept).casefold()
        if len(folded) != len(kept):  # casefold changed a length (ß → ss): compare char by char
            folded = "".join(text[i].lower()[:1] for i in kept)
        spans: list[tuple[int, int]] = []
        i = 0
        while i < len(folded):
            end = self._match_end(folded, i)
            if end > i:
                spans.append((kept[i], kept[end - 1] + 1))
                i = end
            else:
                i += 1
        if not spans:
            return text
        out, last = [], 0
        for start, end in spans:
            out.append(text[last:start])
            out.append(REDACTED)
            last = end
        out.append(text[last:])
        return "".join(out)

    def _match_end(self, folded: str, i: int) -> int:
        """The end of the longest piece of a secret form that starts at i (i itself if none)."""
        for size, grams in self.grams.items():
            if folded[i : i + size] in grams:
                end = i + size
                while end < len(folded) and any(folded[i : end + 1] in form for form in self.forms):
                    end += 1
                return end
        return i


def _letters_and_digits(text: str) -> str:
    return "".join(char for char in text if char.isalnum()).casefold()


def _forms(secret: str) -> list[str]:
    raw = secret.encode("utf-8")
    forms = [secret, raw.hex(), quote(secret, safe=""), json.dumps(secret)[1:-1]]
    for offset in range(3):
        # The characters of base64(prefix + secret) that depend on the secret's bytes alone,
        # for a prefix of `offset` bytes (mod 3).
        encoded = base64.b64encode(b"\0" * offset + raw).decode("ascii")
        start, end = -(-8 * offset // 6), 8 * (offset + len(raw)) // 6
        piece = encoded[start:end]
        forms.extend([piece, piece.replace("+", "-").replace("/", "_")])
    return forms
