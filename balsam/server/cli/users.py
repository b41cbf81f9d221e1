"""`balsam server user add|passwd|list|delete`: account administration from the server host."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from balsam.server.auth import throttle
from balsam.server.conf import load_settings
from balsam.server.crud import users


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("user", help="manage user accounts")
    actions = parser.add_subparsers(dest="action", required=True)
    for name, help_text in (("add", "create a user"), ("passwd", "set a user's password")):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("username")
        action.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from standard input (for scripts)",
        )
        action.set_defaults(func=_add if name == "add" else _passwd)
    listing = actions.add_parser("list", help="list users")
    listing.set_defaults(func=_list)
    unlock = actions.add_parser(
        "unlock", help="lift a login lockout now (for the user, and for client addresses given with --address)"
    )
    unlock.add_argument("username")
    unlock.add_argument("--address", action="append", default=[], help="a client address to unlock too (repeatable)")
    unlock.set_defaults(func=_unlock)
    remove = actions.add_parser("delete", help="delete a user and everything they own")
    remove.add_argument("username")
    remove.add_argument("--yes", action="store_true", help="confirm: all of the user's sites and jobs go too")
    remove.set_defaults(func=_delete)


def _session() -> Session:
    return Session(create_engine(load_settings().sqlalchemy_url))


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif env := os.environ.get("BALSAM_NEW_PASSWORD"):
        password = env
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise SystemExit("balsam: passwords do not match")
    if not password:
        raise SystemExit("balsam: empty password")
    return password


def _add(args: argparse.Namespace) -> int:
    password = _read_password(args)
    with _session() as db, db.begin():
        if users.create(db, args.username, password) is None:
            print(f"balsam: user {args.username!r} already exists", file=sys.stderr)
            return 1
    print(f"created user {args.username}")
    return 0


def _passwd(args: argparse.Namespace) -> int:
    password = _read_password(args)
    with _session() as db, db.begin():
        if not users.set_password(db, args.username, password):
            print(f"balsam: no user {args.username!r}", file=sys.stderr)
            return 1
        throttle.clear(db, [throttle.user_key(args.username)])  # a new password starts with a clean slate
    print(f"password changed for {args.username}")
    return 0


def _list(_: argparse.Namespace) -> int:
    with _session() as db:
        for user in users.list_all(db):
            kind = "password" if user.hashed_password else "oauth"
            print(f"{user.id}\t{user.username}\t{kind}\t{user.created_at.isoformat(timespec='seconds')}")
    return 0


def _unlock(args: argparse.Namespace) -> int:
    keys = [throttle.user_key(args.username), *(throttle.address_key(a) for a in args.address)]
    with _session() as db, db.begin():
        cleared = throttle.clear(db, keys)
    print(f"cleared {cleared} login throttle counter(s); running workers notice within seconds")
    return 0


def _delete(args: argparse.Namespace) -> int:
    if not args.yes:
        print(
            "balsam: deleting a user removes all their sites, apps and jobs; re-run with --yes",
            file=sys.stderr,
        )
        return 2
    with _session() as db, db.begin():
        if not users.delete_by_username(db, args.username):
            print(f"balsam: no user {args.username!r}", file=sys.stderr)
            return 1
    print(f"deleted user {args.username}")
    return 0
