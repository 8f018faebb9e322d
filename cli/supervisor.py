"""Keeping a worker process running: restart it when it stops on an error.

Celery's worker can stop for good on a broker connection lost at a bad moment (an
"unrecoverable error" while it restores unacknowledged messages to a broker that is gone).
Nothing is lost when it does (the outbox still holds every event not delivered), but
deliveries stop until someone restarts it; ``tessera worker`` does that itself, with a
growing pause, and passes SIGTERM and SIGINT on so that stopping it stays clean.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

MAX_PAUSE = 30.0


def supervise(command: list[str]) -> int:
    """Run ``command`` until it exits cleanly or this process is asked to stop; its last
    exit code."""
    stopping = False
    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    pause = 1.0
    while True:
        started = time.monotonic()
        child = subprocess.Popen(command)  # noqa: S603 - our own command line
        code = child.wait()
        if stopping or code == 0:
            return code
        if time.monotonic() - started > 60:
            pause = 1.0
        print(
            f"tessera worker: the worker stopped (exit {code}); restarting in {pause:.0f}s",
            file=sys.stderr,
            flush=True,
        )
        time.sleep(pause)
        pause = min(MAX_PAUSE, pause * 2)
