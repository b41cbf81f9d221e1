#!/usr/bin/env bash
# Rehearse the PgBouncer that nix/module.nix configures
# (services.balsam.database.pgbouncer) with Debian's pgbouncer and a throwaway
# PostgreSQL standing in for the remote server.
#
# Usage: bash nix/tests/rehearse-pgbouncer.sh /path/to/nixpkgs.lib/lib
#   (a copy of nix-community/nixpkgs.lib, as for nix/tests/module-eval.nix)
#
# What it takes from the repository:
#   - pgbouncer.ini: the `services.pgbouncer.settings` that the module sets on
#     the PgBouncer host of nix/tests/module-eval.nix, rendered as nixpkgs'
#     pgbouncer.nix renders them (nulls dropped, pkgs.formats.ini), with the
#     remote host/port/database and the socket directory/port pointed at this
#     rehearsal (through module-eval.nix's pgbouncerConfig argument);
#   - the HBA file: nix/lib's pgbouncerHba, as the module calls it;
#   - the client's URL: the BALSAM_DATABASE_URL the module gives the server.
# What differs from a NixOS host: the local client is the OS user `nobody`
# instead of `balsam` (no such user here), so the HBA line and the URL name
# `nobody`; PgBouncer runs as `postgres` instead of `pgbouncer`, in the
# foreground instead of under systemd (Type=notify-reload), and reads its
# auth_file and HBA file from a temporary directory instead of
# /run/credentials/pgbouncer.service and the Nix store; the "remote"
# PostgreSQL (15, Debian's) listens on 127.0.0.1 with scram-sha-256.
#
# Needs root (it switches to `postgres` and `nobody`), Debian's pgbouncer and
# PostgreSQL 15 (/usr/lib/postgresql/15/bin), and nix-instantiate.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
nixpkgs_lib=${1:?usage: rehearse-pgbouncer.sh /path/to/nixpkgs.lib/lib}

say() { printf 'rehearse-pgbouncer: %s\n' "$*" >&2; }
failures=0
pass() { printf 'PASS %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*"; failures=$((failures + 1)); }

[ "$(id -u)" -eq 0 ] || { say "needs root"; exit 1; }
pgbin=/usr/lib/postgresql/15/bin
command -v pgbouncer >/dev/null || { say "pgbouncer not found (apt-get install pgbouncer)"; exit 1; }
[ -x "$pgbin/postgres" ] || { say "PostgreSQL 15 not found in $pgbin"; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pg_port=$(free_port)
bouncer_port=$(free_port)
password="rehearsal-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"

tmp=$(mktemp -d /tmp/rehearse-pgbouncer.XXXXXX)
chmod 755 "$tmp"
bouncer_pid=
cleanup() {
  set +e
  if [ -n "$bouncer_pid" ]; then
    kill "$bouncer_pid" 2>/dev/null
    wait "$bouncer_pid" 2>/dev/null
  fi
  if [ -f "$tmp/pg/postmaster.pid" ]; then
    runuser -u postgres -- "$pgbin/pg_ctl" -D "$tmp/pg" -m immediate -w stop >/dev/null 2>&1
  fi
  [ -n "${KEEP_TMP:-}" ] && { echo "kept $tmp"; return; }
  rm -rf "$tmp"
}
trap cleanup EXIT

# --- the "remote" PostgreSQL: TCP on 127.0.0.1, scram-sha-256 ---------------
install -d -o postgres -g postgres -m 700 "$tmp/pg" "$tmp/pgsock"
runuser -u postgres -- "$pgbin/initdb" -D "$tmp/pg" -U postgres --auth-local=trust \
  --auth-host=scram-sha-256 --no-sync >/dev/null
runuser -u postgres -- "$pgbin/pg_ctl" -D "$tmp/pg" -l "$tmp/pg/log" -w \
  -o "-c listen_addresses=127.0.0.1 -c port=$pg_port -c unix_socket_directories=$tmp/pgsock" start >/dev/null
runuser -u postgres -- psql -qX -h "$tmp/pgsock" -p "$pg_port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
  -c "CREATE ROLE balsam LOGIN PASSWORD '$password'" -c "CREATE DATABASE balsam_prod OWNER balsam" \
  -c "CREATE ROLE nobody LOGIN PASSWORD '$password'" -c "GRANT CONNECT ON DATABASE balsam_prod TO nobody" >/dev/null
say "PostgreSQL 15 on 127.0.0.1:$pg_port (roles balsam and nobody, scram-sha-256)"

# --- the module's pgbouncer.ini, pointed at this rehearsal --------------------
# module_ini ROLE [NIX]: the module's services.pgbouncer settings with the
# remote role ROLE (database.pgbouncer.user) and the module definitions NIX
# (attribute-set body; `lib` in scope), into $tmp/pgbouncer.ini.module.
nix_eval() {
  local role=$1 extra=$2
  shift 2
  nix-instantiate --store dummy:// --readonly-mode --eval --strict --json nix/tests/module-eval.nix \
    --arg nixpkgsLib "$nixpkgs_lib" --arg pgbouncerConfig "{ lib, ... }: {
      imports = [ ({ lib, ... }: { $extra }) ];
      services.balsam.database.pgbouncer = {
        host = lib.mkForce \"127.0.0.1\";
        port = lib.mkForce $pg_port;
        database = lib.mkForce \"balsam_prod\";
        user = lib.mkForce \"$role\";
      };
      services.pgbouncer.settings.pgbouncer = {
        unix_socket_dir = \"$tmp/pgbouncer\";
        listen_port = $bouncer_port;
      };
    }" "$@"
}
json_text() { python3 -c 'import json, sys; sys.stdout.write(json.load(sys.stdin))'; }
module_ini() { nix_eval "$1" "${2:-}" -A pgbouncerIni | json_text >"$tmp/pgbouncer.ini.module"; }
module_ini balsam
url=$(nix_eval balsam "" -A summary.pgbouncer.balsam.environment.BALSAM_DATABASE_URL | json_text)
hba_path=$(grep '^auth_hba_file=' "$tmp/pgbouncer.ini.module" | cut -d= -f2-)
auth_path=$(grep '^auth_file=' "$tmp/pgbouncer.ini.module" | cut -d= -f2-)
[ "$auth_path" = /run/credentials/pgbouncer.service/balsam-pgbouncer-auth ] || fail "auth_file is $auth_path"
# The two files PgBouncer reads, here instead of the store and the credential directory.
localize_ini() {
sed -e "s|^auth_hba_file=.*|auth_hba_file=$tmp/hba.conf|" -e "s|^auth_file=.*|auth_file=$tmp/auth/userlist.txt|" \
  "$tmp/pgbouncer.ini.module" >"$tmp/pgbouncer.ini"
# nixpkgs' pgbouncer.nix always writes a [peers] section (settings.peers,
# default {}); PgBouncer knows it from 1.19 on (nixpkgs has 1.24), and
# Debian 12's 1.18 refuses the file with it, so drop it when empty there.
bouncer_version=$(pgbouncer --version | awk 'NR == 1 {print $2}')
if [ "$(printf '%s\n1.19\n' "$bouncer_version" | sort -V | head -1)" != 1.19 ]; then
  python3 - "$tmp/pgbouncer.ini" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
new, n = re.subn(r"(?m)^\[peers\]\n(?:\n|(?=\[)|\Z)", "", text)
open(path, "w").write(new)
print(f"rehearse-pgbouncer: pgbouncer < 1.19: dropped {n} empty [peers] section(s)", file=sys.stderr)
PY
fi
chown postgres "$tmp/pgbouncer.ini"
}
localize_ini
say "pgbouncer.ini (module output; auth_hba_file was $hba_path):"
sed 's/^/    /' "$tmp/pgbouncer.ini" >&2

# The local client is `nobody` here (`balsam` on NixOS): the same function, another name.
nix-instantiate --store dummy:// --readonly-mode --eval --strict --json \
  -E '(import ./nix/lib).pgbouncerHba { database = "balsam"; user = "nobody"; }' |
  python3 -c 'import json, sys; sys.stdout.write(json.load(sys.stdin))' >"$tmp/hba.conf"
url=${url/balsam@/nobody@}
say "hba: $(cat "$tmp/hba.conf"); client URL: $url"

install -d -o postgres -g postgres -m 700 "$tmp/auth"
install -d -o postgres -g postgres -m 755 "$tmp/pgbouncer"
write_auth() { printf '%s\n' "$@" | install -o postgres -g postgres -m 600 /dev/stdin "$tmp/auth/userlist.txt"; }
# The remote role's password, and the local client's name with an empty
# password (the client authenticates by peer; checked below without it).
write_auth "\"balsam\" \"$password\"" '"nobody" ""'
chown postgres "$tmp/hba.conf"

socket=$tmp/pgbouncer/.s.PGSQL.$bouncer_port
start_bouncer() {
  runuser -u postgres -- pgbouncer "$tmp/pgbouncer.ini" >>"$tmp/pgbouncer.log" 2>&1 &
  bouncer_pid=$!
  for _ in $(seq 50); do
    [ -S "$socket" ] && return 0
    sleep 0.1
  done
  return 1
}
stop_bouncer() {
  kill "$bouncer_pid" 2>/dev/null || true
  wait "$bouncer_pid" 2>/dev/null || true
  bouncer_pid=
  rm -f "$socket"
}
if start_bouncer; then
  pass "pgbouncer $bouncer_version starts with the module's pgbouncer.ini (socket $socket)"
else
  fail "pgbouncer did not create its socket"
  sed 's/^/    /' "$tmp/pgbouncer.log"
  exit 1
fi

as() { local who=$1; shift; runuser -u "$who" -- env -C / "$@"; }

# --- what the server's connection does ---------------------------------------
if out=$(as nobody psql -qXAt "$url" -c "SELECT current_user || ' ' || current_database() || ' ' || inet_server_port()" 2>&1) &&
  [ "$out" = "balsam balsam_prod $pg_port" ]; then
  pass "peer-authenticated client over the socket reaches the remote database as role balsam ($out)"
else
  fail "client through PgBouncer: $out"
fi

# Transaction pooling keeps a client's transaction on one server connection.
if out=$(as nobody psql -qXAt "$url" -v ON_ERROR_STOP=1 \
  -c "BEGIN; CREATE TEMP TABLE t (x int) ON COMMIT DROP; INSERT INTO t VALUES (1); SELECT count(*) FROM t; COMMIT;" 2>&1) &&
  [ "$out" = 1 ]; then
  pass "a transaction runs whole through transaction pooling"
else
  fail "transaction through PgBouncer: $out"
fi

# --- what the HBA file refuses -------------------------------------------------
if out=$(as postgres psql -qXAt "$url" -c 'SELECT 1' 2>&1); then
  fail "another OS user (postgres) logged in as nobody: $out"
else
  pass "another OS user cannot log in as the client (peer): ${out##*FATAL:  }"
fi
other_url=${url/nobody@/postgres@}
if out=$(as nobody psql -qXAt "$other_url" -c 'SELECT 1' 2>&1); then
  fail "the client logged in as postgres: $out"
else
  pass "the client cannot log in as another role (no HBA line): ${out##*FATAL:  }"
fi

# --- the auth_file lines docs/nixos.md asks for ----------------------------------
# Each case in a freshly started PgBouncer: a reload keeps the users it knows.
restart_with() { stop_bouncer; write_auth "$@"; start_bouncer || fail "pgbouncer restart"; }
# Remote role `balsam`, client `nobody`, no line for the client: refused.
restart_with "\"balsam\" \"$password\""
if out=$(as nobody psql -qXAt "$url" -c 'SELECT 1' 2>&1); then
  fail "auth_file without the client's line: the login worked ($out); docs/nixos.md says it is needed"
else
  pass "auth_file without a line for the client (named unlike the remote role): refused (${out##*FATAL:  })"
fi
# A wrong password for the remote role: PostgreSQL refuses PgBouncer.
restart_with '"balsam" "wrong-password"' '"nobody" ""'
if out=$(as nobody psql -qXAt "$url" -c 'SELECT 1' 2>&1); then
  fail "a wrong remote password was accepted: $out"
else
  pass "a wrong remote password in auth_file: the login fails (${out##*FATAL:  })"
fi
# The module's default: the remote role has the client's name (balsam on
# NixOS, nobody here), so one line serves both.
module_ini nobody
localize_ini
restart_with "\"nobody\" \"$password\""
if out=$(as nobody psql -qXAt "$url" -c "SELECT current_user || ' ' || current_database()" 2>&1) &&
  [ "$out" = "nobody balsam_prod" ]; then
  pass "remote role named like the client: the one line \"ROLE\" \"PASSWORD\" is enough ($out)"
else
  fail "remote role named like the client: $out"
fi

# --- pool_size and pool_mode, as rendered -------------------------------------------
# poolSize = 1: one server connection. A client that stays connected between
# transactions does not keep it in transaction mode, so a second client gets
# through at once; in session mode (nixpkgs' default, the contrast) it waits.
second_client_while_first_stays() {
  local fifo=$tmp/hold.fifo holder out
  rm -f "$fifo" "$tmp/hold.out"
  mkfifo "$fifo"
  as nobody psql -qXAt "$url" <"$fifo" >"$tmp/hold.out" 2>&1 &
  holder=$!
  exec 9>"$fifo"
  echo "SELECT 'first';" >&9
  for _ in $(seq 50); do
    grep -q first "$tmp/hold.out" 2>/dev/null && break
    sleep 0.1
  done
  out=$(as nobody timeout 5 psql -qXAt "$url" -c "SELECT 'second'" 2>&1) || out="no answer within 5 s"
  exec 9>&-
  wait "$holder" || true
  printf '%s\n' "$out"
}
pool_one='services.balsam.database.pgbouncer.poolSize = lib.mkForce 1;'
module_ini nobody "$pool_one"
localize_ini
grep -q '^balsam=.* pool_size=1$' "$tmp/pgbouncer.ini" || fail "poolSize = 1 not rendered"
restart_with "\"nobody\" \"$password\""
out=$(second_client_while_first_stays)
if [ "$out" = second ]; then
  pass "pool_size=1, transaction mode: a second client runs while the first stays connected"
else
  fail "pool_size=1, transaction mode: second client: $out"
fi
module_ini nobody "$pool_one services.pgbouncer.settings.pgbouncer.pool_mode = lib.mkForce \"session\";"
localize_ini
restart_with "\"nobody\" \"$password\""
out=$(second_client_while_first_stays)
if [ "$out" = second ]; then
  fail "pool_size=1, session mode (contrast): the second client got through; the check cannot tell the modes apart"
else
  pass "contrast: the same with pool_mode=session makes the second client wait ($out)"
fi

# --- what the Python side has to avoid in PgBouncer mode -------------------------
# The server's normal connections send `options` (timezone, read-only default).
if out=$(as nobody env PGOPTIONS='-c timezone=UTC' psql -qXAt "$url" -c 'SELECT 1' 2>&1); then
  say "NOTE: this pgbouncer accepts the options startup parameter"
else
  say "NOTE: this pgbouncer refuses the options startup parameter: ${out##*FATAL:  }"
fi

if [ "$failures" -ne 0 ]; then
  say "pgbouncer log:"
  sed 's/^/    /' "$tmp/pgbouncer.log" >&2
  echo "FAIL rehearse-pgbouncer: $failures failure(s)"
  exit 1
fi
echo "PASS rehearse-pgbouncer"
