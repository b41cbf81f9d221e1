"""Root conftest for upstream's test files (`tests/api` of the balsam 0.7.0a24 sdist).

Copied to `<tree>/tests/conftest.py` at test time and run by pytest inside the published client's virtualenv,
against the live server at `BALSAM_TEST_API_URL` (the variable upstream's `tests/test_platform.py` names for
"an already running server"). The sdist ships those test files without the repository's root conftest; these
are our own fixtures with the names and meanings the files expect:

- `client`: a logged-in published client (`BasicAuthRequestsClient`) for a fresh user, one per test.
  Its retry count comes from `SUITE_CLIENT_RETRY_COUNT` (default 2: a stray 4xx/5xx is retried with the
  client's own back-off of 1 s, 2 s, 4 s and then fails the test as `TimeoutError`, instead of the 11 tries
  over ~34 minutes a user would wait).
- tests marked with a platform other than `BALSAM_TEST_PLATFORM` (default `generic`) are skipped.
"""

from __future__ import annotations

import json
import os
import urllib.request
import uuid

import pytest
from balsam.client import BasicAuthRequestsClient, urls

API_URL = os.environ["BALSAM_TEST_API_URL"].rstrip("/")
RETRY_COUNT = int(os.environ.get("SUITE_CLIENT_RETRY_COUNT", "2"))
# Upstream's platform markers (tests/test_platform.py). A test marked with some of them runs only there.
PLATFORMS = {"alcf_theta", "alcf_thetagpu", "alcf_cooley", "alcf_polaris", "generic"}


def pytest_configure(config: pytest.Config) -> None:
    for name in sorted(PLATFORMS):
        config.addinivalue_line("markers", f"{name}: runs only when BALSAM_TEST_PLATFORM={name}")


def pytest_runtest_setup(item: pytest.Item) -> None:
    platform = os.environ.get("BALSAM_TEST_PLATFORM", "generic")
    wanted = PLATFORMS.intersection(mark.name for mark in item.iter_markers())
    if wanted and platform not in wanted:
        pytest.skip(f"only for platform {', '.join(sorted(wanted))}; this is {platform}")


def _register(prefix: str) -> tuple[str, str]:
    username, password = f"{prefix}-{uuid.uuid4().hex[:12]}", "suite-password-1"
    body = json.dumps({"username": username, "password": password}).encode()
    request = urllib.request.Request(
        f"{API_URL}/{urls.PASSWORD_REGISTER}", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as reply:  # raises on a 4xx/5xx
        assert reply.status == 201, reply.read()
    return username, password


@pytest.fixture
def client() -> BasicAuthRequestsClient:
    username, password = _register("suite")
    api_client = BasicAuthRequestsClient(API_URL, username=username, password=password, retry_count=RETRY_COUNT)
    api_client.refresh_auth()
    return api_client
