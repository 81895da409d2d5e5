"""Sending one notification with apprise (blocking: callers run it in a thread).

Apprise says why a send failed only in its log, so each send captures apprise's log for its
duration; one send at a time, since the capture listens on apprise's one logger. What comes
back is redacted: the URL's secret parts never reach the delivery log, nor (urls.hiding)
any log record apprise or its HTTP libraries write meanwhile.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import apprise

from ..models import NotificationKind
from .urls import hiding, quiet_apprise, redactor

ERROR_CHARS = 1_000
NOTIFY_TYPES = {
    NotificationKind.approval_requested: apprise.NotifyType.WARNING,
    NotificationKind.run_succeeded: apprise.NotifyType.SUCCESS,
    NotificationKind.run_failed: apprise.NotifyType.FAILURE,
    NotificationKind.workflow_done: apprise.NotifyType.SUCCESS,
    NotificationKind.test: apprise.NotifyType.INFO,
}
_ONE_AT_A_TIME = threading.Lock()

# (url, title, body, kind) → None when delivered, else why not (already redacted).
Sender = Callable[[str, str, str, NotificationKind], str | None]


def send(url: str, title: str, body: str, kind: NotificationKind) -> str | None:
    """Send the notification; None when the service took it, else the reason (redacted)."""
    quiet_apprise()
    hide = redactor([url])
    notifier = apprise.Apprise()
    with hiding(hide):
        added = notifier.add(url)
    if not added:
        return "the URL is not one apprise can send to (any more); enter it again"
    error = None
    with _ONE_AT_A_TIME, apprise.LogCapture(level=logging.INFO, fmt="%(levelname)s %(message)s") as captured:
        try:
            with hiding(hide):
                delivered = bool(notifier.notify(body=body, title=title, notify_type=NOTIFY_TYPES[kind]))
        except Exception as exc:  # noqa: BLE001 - a plugin's bug is this delivery's failure, not the worker's
            delivered, error = False, f"{type(exc).__name__}: {exc}"
        output = captured.getvalue()
    if delivered:
        return None
    reasons = [
        line.split(" ", 1)[1].strip()
        for line in output.splitlines()
        if line.startswith(("WARNING ", "ERROR ", "CRITICAL ")) and " " in line
    ]
    if error:
        reasons.append(error)
    reason = "; ".join(dict.fromkeys(reasons[-3:])) or "the service did not accept the notification"
    return hide(reason)[:ERROR_CHARS]
