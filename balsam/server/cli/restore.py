"""`balsam server restore FILE --yes`: load a `balsam server backup` dump into an empty or named database."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from balsam.server.conf import PGBOUNCER_REFUSED, load_settings
from balsam.server.ops.backup import BackupError, BackupSettings, RestoreRefused, restore_backup


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "restore",
        help="restore a backup into an empty (or new) database",
        description="Restores FILE into the database of BALSAM_DATABASE_URL, or into --database NAME on the same "
        "server (created if missing). A database that already holds tables is refused unless --clean is given. "
        "Objects end up owned by the connecting user (--no-owner, --no-privileges).",
    )
    parser.add_argument("file", type=Path, help="a dump written by `balsam server backup`")
    parser.add_argument("--yes", action="store_true", help="confirm: required, restoring writes to a database")
    parser.add_argument("--database", help="restore into this database on the same server instead")
    parser.add_argument(
        "--clean", action="store_true", help="allow a non-empty target: drop the dumped objects first, then restore"
    )
    parser.add_argument("--pg-bindir", type=Path, help="directory with pg_restore (default: $BALSAM_BACKUP_PG_BINDIR)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    if settings.admin_reaches_pgbouncer():
        print(PGBOUNCER_REFUSED.format(command="restore"), file=sys.stderr)
        return 2
    if not args.yes:
        target = args.database or settings.direct_database_url.rsplit("/", 1)[-1].split("?", 1)[0]
        print(
            f"balsam: this restores {args.file} into database {target!r}; re-run with --yes to confirm",
            file=sys.stderr,
        )
        return 2
    try:
        target = restore_backup(
            args.file,
            settings.direct_database_url,
            database=args.database,
            clean=args.clean,
            bindir=args.pg_bindir or BackupSettings().pg_bindir,
        )
    except RestoreRefused as exc:
        print(f"balsam: restore refused: {exc}", file=sys.stderr)
        return 2
    except BackupError as exc:
        print(f"balsam: restore failed: {exc}", file=sys.stderr)
        return 1
    print(f"restored {args.file} into database {target.database}")
    return 0
