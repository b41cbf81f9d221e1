"""balsam.server.serving: what the gunicorn master loads (the worker class, the config hooks, env parsing).

The draining behaviour itself is tested end to end with a real gunicorn in tests/test_reload.py.
"""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from uvicorn.protocols.http.h11_impl import H11Protocol

from balsam.server.serving import hooks, multiprocess, worker
from balsam.server.serving.environment import env_int, env_switch
from tests.serving import GUNICORN_CONF


def test_worker_class_is_the_draining_worker_with_the_pinned_uvicorn() -> None:
    assert worker.draining_supported()
    assert worker.worker_class_path() == "balsam.server.serving.worker.BalsamUvicornWorker"
    # httptools and uvloop are pinned (requirements/deploy.txt): the worker uses them.
    assert worker.BalsamUvicornWorker.CONFIG_KWARGS["http"] is worker.HTTP_PROTOCOL
    assert worker.HTTP_PROTOCOL.__name__ == "DrainingHttpToolsProtocol"
    assert issubclass(worker.HTTP_PROTOCOL, worker.Draining)
    assert worker.BalsamUvicornWorker.CONFIG_KWARGS["loop"] == "uvloop"


def test_worker_class_falls_back_to_stock_when_uvicorn_lacks_an_override(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delattr(H11Protocol, "handle_events")
    assert worker.worker_class_path() == worker.STOCK_WORKER
    assert "H11Protocol.handle_events" in capsys.readouterr().out


def test_env_int(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BALSAM_TEST_INT", raising=False)
    assert env_int("BALSAM_TEST_INT", 7) == 7
    monkeypatch.setenv("BALSAM_TEST_INT", "")
    assert env_int("BALSAM_TEST_INT", 7) == 7
    monkeypatch.setenv("BALSAM_TEST_INT", "12")
    assert env_int("BALSAM_TEST_INT", 7) == 12
    monkeypatch.setenv("BALSAM_TEST_INT", "twelve")
    with pytest.raises(SystemExit, match="Invalid setting BALSAM_TEST_INT: expected an integer"):
        env_int("BALSAM_TEST_INT", 7)


def test_env_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BALSAM_TEST_SWITCH", raising=False)
    assert env_switch("BALSAM_TEST_SWITCH", True) is True
    monkeypatch.setenv("BALSAM_TEST_SWITCH", "")
    assert env_switch("BALSAM_TEST_SWITCH", False) is False
    for raw, value in (("off", False), (" OFF ", False), ("0", False), ("no", False), ("On", True), ("1", True)):
        monkeypatch.setenv("BALSAM_TEST_SWITCH", raw)
        assert env_switch("BALSAM_TEST_SWITCH", not value) is value
    monkeypatch.setenv("BALSAM_TEST_SWITCH", "of")
    with pytest.raises(SystemExit, match="Invalid setting BALSAM_TEST_SWITCH: expected on or off, got 'of'"):
        env_switch("BALSAM_TEST_SWITCH", True)


def test_config_file_is_plain_settings_naming_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GUNICORN_KEEPALIVE", "GUNICORN_WORKERS", "BALSAM_BIND", "SERVER_HOST", "SERVER_PORT"):
        monkeypatch.delenv(name, raising=False)
    config = runpy.run_path(str(GUNICORN_CONF))
    assert config["worker_class"] == "balsam.server.serving.worker.BalsamUvicornWorker"
    assert config["on_starting"] is hooks.on_starting and config["on_reload"] is hooks.on_reload
    assert config["child_exit"] is hooks.child_exit and config["on_exit"] is hooks.on_exit
    assert config["keepalive"] == 2 and config["preload_app"] is False
    assert config["bind"] == ["127.0.0.1:8000"]


def test_the_master_loads_no_application_module() -> None:
    """Loading the config (as the master does) must not import the app, its settings or its libraries."""
    probe = (
        "import runpy, sys; runpy.run_path(sys.argv[1]);"
        "bad = sorted(m for m in sys.modules if m.startswith(('balsam.server.main', 'balsam.server.conf',"
        " 'balsam.server.api', 'balsam.server.db', 'fastapi', 'sqlalchemy', 'pydantic')));"
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(GUNICORN_CONF)], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_metrics_directory_fresh_or_the_operators(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path))
    path, created = multiprocess.prepare()
    assert created and path.parent == tmp_path and path.name.startswith("balsam-metrics-")
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(path)  # what the workers inherit
    multiprocess.remove(path)
    assert not path.exists()

    own = tmp_path / "own"
    own.mkdir()
    (own / "counter_123.db").write_bytes(b"stale")
    (own / "keep.txt").write_text("not ours")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(own))
    assert multiprocess.prepare() == (own, False)
    assert sorted(p.name for p in own.iterdir()) == ["keep.txt"]
