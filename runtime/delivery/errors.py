"""The delivery's one exception, apart so that the senders and the mail transports share it."""

from __future__ import annotations


class DeliveryError(Exception):
    """The receiver did not take the event; the message says why, for ``last_error``."""
