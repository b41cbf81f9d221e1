"""What the environment asks of the tests: tools that must be there (CI), and where to keep what tests produce.

Tests that need a tool from outside Python (podman, chromium, pgbouncer) skip where it is missing, except where `.ci/run`
set the variable below: it installs the tools, so there a missing one fails the test instead of skipping it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

REQUIRE_COMPOSE = "BALSAM_TEST_REQUIRE_COMPOSE"
REQUIRE_BROWSER = "BALSAM_TEST_REQUIRE_BROWSER"
REQUIRE_PGBOUNCER = "BALSAM_TEST_REQUIRE_PGBOUNCER"
# A directory for screenshots and timings worth keeping (e.g. docs/img); otherwise they go to tmp_path.
ARTIFACTS = "BALSAM_TEST_ARTIFACTS"


def unavailable(reason: str, required_by: str) -> NoReturn:
    """Skip with `reason`, or fail with it when the environment variable `required_by` is 1."""
    if os.environ.get(required_by) == "1":
        pytest.fail(f"{reason} ({required_by}=1: this test must run here)", pytrace=False)
    pytest.skip(reason)


def artifact_path(name: str, fallback_dir: Path) -> Path:
    directory = Path(os.environ.get(ARTIFACTS) or fallback_dir)
    directory.mkdir(parents=True, exist_ok=True)
    return directory / name
