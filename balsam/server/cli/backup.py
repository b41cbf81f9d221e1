"""`balsam server backup`: pg_dump the database into a directory, then apply retention."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from balsam.server.conf import PGBOUNCER_REFUSED, load_settings
from balsam.server.ops.backup import BackupError, BackupSettings, apply_retention, create_backup

logger = logging.getLogger("balsam.ops.backup")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "backup",
        help="dump the database (pg_dump custom format) into a directory and prune old dumps",
        description="Writes DIR/balsam-<UTC time>.dump atomically, then deletes this tool's older dumps beyond "
        "--keep or --max-age-days. Exits non-zero on any failure.",
    )
    parser.add_argument("--dir", type=Path, help="backup directory (default: $BALSAM_BACKUP_DIR)")
    parser.add_argument("--keep", type=int, help="keep at most N backups (default: $BALSAM_BACKUP_KEEP, no limit)")
    parser.add_argument(
        "--max-age-days",
        type=float,
        help="delete backups older than D days (default: $BALSAM_BACKUP_MAX_AGE_DAYS, no limit)",
    )
    parser.add_argument("--pg-bindir", type=Path, help="directory with pg_dump (default: $BALSAM_BACKUP_PG_BINDIR)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    defaults = BackupSettings()
    directory = args.dir or defaults.dir
    if directory is None:
        print("balsam: backup: no directory; pass --dir or set BALSAM_BACKUP_DIR", file=sys.stderr)
        return 2
    keep = args.keep if args.keep is not None else defaults.keep
    max_age = args.max_age_days if args.max_age_days is not None else defaults.max_age_days
    settings = load_settings()
    if settings.admin_reaches_pgbouncer():
        print(PGBOUNCER_REFUSED.format(command="backup"), file=sys.stderr)
        return 2
    try:
        if (keep is not None and keep < 1) or (max_age is not None and max_age <= 0):
            raise BackupError("--keep must be at least 1 and --max-age-days positive")
        path = create_backup(settings.direct_database_url, directory, args.pg_bindir or defaults.pg_bindir)
        apply_retention(directory, keep=keep, max_age_days=max_age, protect=path)
    except BackupError as exc:
        logger.error("backup failed: %s", exc)
        print(f"balsam: backup failed: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0
