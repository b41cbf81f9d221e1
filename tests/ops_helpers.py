"""Helpers for the operations tests: run the CLI as a subprocess, snapshot a database, find processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`balsam server <args>` in a fresh interpreter, as an operator or a systemd timer would run it."""
    return subprocess.run(
        [sys.executable, "-m", "balsam.cli", "server", *args],
        env={**os.environ, **(env or {})},
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def snapshot(url: str) -> dict[str, list[str]]:
    """Every table's rows (as row literals, sorted) and every sequence's state, keyed by name."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
            ).scalars()
            result: dict[str, list[str]] = {}
            for table in list(tables):
                rows = conn.execute(text(f'SELECT CAST(t AS text) FROM "{table}" AS t ORDER BY 1')).scalars()
                result[f"table {table}"] = list(rows)
            sequences = conn.execute(
                text("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1")
            ).scalars()
            for seq in list(sequences):
                state = conn.execute(text(f'SELECT last_value, is_called FROM "{seq}"')).one()
                result[f"sequence {seq}"] = [str(tuple(state))]
            return result
    finally:
        engine.dispose()


def process_alive(pid: int) -> bool:
    """True if `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in {"Z", "X"}


def descendants(pid: int) -> set[int]:
    """All processes below `pid` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found
