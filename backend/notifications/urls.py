"""Apprise URLs: checking one without sending, what the API shows of it, its secret parts.

An apprise URL names a service and carries its credentials (`discord://<webhook id>/<token>`,
`slack://<tokens>`, `mailto://user:password@host`, `json://host/path?-token=…`), so the whole
URL is a secret: it is stored encrypted and shown only as a hint, the scheme and, when the
service is reached at a host of the user's naming, that host (`json://127.0.0.1:8765/…`).

Apprise logs what it parses and sends, and the HTTP libraries it uses log request lines (path
and query: a webhook's token) at debug level. While a URL is checked or sent to (`hiding`),
every record those loggers write has the URL's secret parts hidden before any handler sees
it; besides, apprise's logger passes nothing on to the application's handlers
(`quiet_apprise`): what a send reports is captured, redacted and kept on the delivery.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

import apprise

from ..errors import InvalidInput
from ..plugins.secrets import Redactor

MASK = "…"
# A host the user named (a domain, an IPv4 or bracketed IPv6 address, with a port): shown. A
# "host" without a dot is usually a service's token or topic (`ntfy://mytopic`): masked.
_SHOWN_HOST = re.compile(r"^(?:localhost|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]{0,31})://")
HELP = "see https://github.com/caronc/apprise/wiki for the services and their URLs"


# Loggers that may write a URL being checked or sent to: apprise's and its HTTP libraries'.
URL_LOGGERS = (
    apprise.logger.name,
    "urllib3",
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.util.retry",
    "requests",
)
# Set while this context checks or sends (apprise sends in threads with a copy of the context).
_hiding: contextvars.ContextVar[Callable[[str], str] | None] = contextvars.ContextVar("url_hiding", default=None)


class HideWhileSending(logging.Filter):
    """Hides the URL's secret parts in records logged while it is checked or sent to."""

    def filter(self, record: logging.LogRecord) -> bool:
        hide = _hiding.get()
        if hide is not None:
            record.msg, record.args = hide(record.getMessage()), None
        return True


_FILTER = HideWhileSending()


@contextlib.contextmanager
def hiding(hide: Callable[[str], str]) -> Iterator[None]:
    token = _hiding.set(hide)
    try:
        yield
    finally:
        _hiding.reset(token)


def quiet_apprise() -> None:
    """Keep apprise's log records out of the application's logs, and hide URLs in the records of
    the loggers that may write one (idempotent)."""
    logging.getLogger(apprise.logger.name).propagate = False
    for name in URL_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


quiet_apprise()


@dataclass(frozen=True, slots=True)
class CheckedUrl:
    url: str
    hint: str
    service: str


@functools.cache
def known_schemes() -> frozenset[str]:
    """Every scheme apprise can send to (read once: it walks all of apprise's plugins)."""
    schemes: set[str] = set()
    for entry in apprise.Apprise().details().get("schemas", []):
        for key in ("protocols", "secure_protocols"):
            value = entry.get(key) or ()
            schemes.update([value] if isinstance(value, str) else value)
    return frozenset(scheme.lower() for scheme in schemes)


def check(url: str) -> CheckedUrl:
    """The URL if apprise can send to it (nothing is sent), with its hint; else InvalidInput
    saying why (never repeating the URL: it holds the credentials)."""
    match = _SCHEME.match(url)
    if match is None:
        raise InvalidInput(f"url: not an apprise URL (service://…, such as ntfy://topic or json://host/path); {HELP}")
    scheme = match.group(1).lower()
    if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F for char in url):
        raise InvalidInput("url: must not contain spaces or control characters")
    with hiding(redactor([url])):
        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if plugin is None:
        if scheme not in known_schemes():
            raise InvalidInput(f"url: apprise knows no service with the scheme {scheme}://; {HELP}")
        raise InvalidInput(
            f"url: not a valid {scheme}:// URL (a part it needs, such as a token, host or topic, is missing "
            f"or malformed); {HELP}"
        )
    return CheckedUrl(url=url, hint=hint(url, plugin), service=str(getattr(plugin, "service_name", scheme)))


def hint(url: str, plugin: object | None = None) -> str:
    """`scheme://host/…`: the host only when the service is reached at a host the user named."""
    try:
        parts = urlsplit(url)
    except ValueError:  # apprise read it, urllib cannot (a bracket that is not an IPv6 address)
        return f"{url.split('://', 1)[0].lower()}://{MASK}"[:300]
    scheme = parts.scheme.lower()
    userinfo, _, hostport = parts.netloc.rpartition("@")
    names_a_host = scheme in ("http", "https") or "host" in (getattr(plugin, "template_tokens", None) or {})
    host = hostport if names_a_host and _SHOWN_HOST.match(hostport) else (MASK if hostport else "")
    rest = f"/{MASK}" if parts.path.strip("/") or parts.query or parts.fragment else ""
    return f"{scheme}://{MASK + '@' if userinfo else ''}{host}{rest}"[:300]


def secret_parts(url: str) -> list[str]:
    """What of the URL must not be shown: each part but the scheme and a host the hint shows."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [piece for piece in re.split(r"[/:@?&=#]+", url.split("://", 1)[-1]) if piece]
    userinfo, _, hostport = parts.netloc.rpartition("@")
    found: list[str] = []
    found.extend(unquote(piece) for piece in re.split(r"[:@]", userinfo))
    if hostport and hostport not in hint(url, _instantiate_quietly(url)):
        found.append(hostport)
        found.extend(hostport.split(":"))
    found.extend(unquote(segment) for segment in parts.path.split("/"))
    found.extend(value for _, value in parse_qsl(parts.query, keep_blank_values=True))
    found.append(unquote(parts.fragment))
    return [piece for piece in found if piece]


def _instantiate_quietly(url: str) -> object | None:
    """The apprise plugin for the URL, for its host token only (what its parsing logs is dropped:
    the redactor is what is being made)."""
    with hiding(lambda _text: "(an apprise URL was parsed)"):
        return apprise.Apprise.instantiate(url, suppress_exceptions=True)


def redactor(urls: Iterable[str]) -> Redactor:
    """Hides the secret parts of these URLs in text (an error a service answered, a log line)."""
    return Redactor([piece for url in urls for piece in secret_parts(url)])
