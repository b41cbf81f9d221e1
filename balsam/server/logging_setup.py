"""Logging configuration: stderr, or a file under BALSAM_LOG_DIR."""

from __future__ import annotations

import logging
import os

from balsam.server.conf import Settings

_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


def configure_logging(settings: Settings) -> None:
    root = logging.getLogger("balsam")
    if getattr(root, "_balsam_configured", False):
        return
    if settings.log_dir is not None:
        settings.log_dir.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(settings.log_dir / f"balsam-server-{os.getpid()}.log")
    else:
        handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(_FORMAT))
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    root.propagate = False
    root._balsam_configured = True  # type: ignore[attr-defined]
