#!/usr/bin/env bash
# Nix checks that run without nixpkgs (CI cannot download it): parse every
# .nix file, evaluate the nixpkgs-free unit tests, validate flake.lock, and
# compare the Nix package's Python dependencies with pyproject.toml.
#
# Usage: bash .ci/nix-checks.sh   (from anywhere; works on the repo root)
# Installs Debian's nix-bin when nix-instantiate is missing (needs root).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

failures=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass() { printf 'PASS %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*"; failures=$((failures + 1)); }

# --- tools -------------------------------------------------------------------
if ! command -v nix-instantiate >/dev/null 2>&1; then
  echo "nix-instantiate not found; installing Debian's nix-bin"
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nix-bin >/dev/null
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nix-bin >/dev/null
  else
    echo "FAIL cannot install nix-bin (not root, no sudo)"
    exit 1
  fi
fi
echo "using $(nix-instantiate --version)"

# Pure evaluation only: no Nix store or daemon is used (works as any user).
nix_eval() { nix-instantiate --store dummy:// --readonly-mode --eval --strict "$@"; }

# --- 1. every .nix file parses ------------------------------------------------
# Tracked and new (not ignored) files; plain `find` when git cannot list them.
if ! git ls-files -z --cached --others --exclude-standard -- '*.nix' >"$tmp/nix-files" 2>/dev/null; then
  echo "git ls-files failed; listing .nix files with find"
  find . -name '*.nix' -not -path './.git/*' -not -path './.venv/*' -not -path './node_modules/*' \
    -print0 >"$tmp/nix-files"
fi
mapfile -d '' nix_files <"$tmp/nix-files"
if [ "${#nix_files[@]}" -eq 0 ]; then
  fail "no .nix files found"
fi
for f in "${nix_files[@]}"; do
  [ -e "$f" ] || continue  # deleted in the work tree
  if out=$(nix-instantiate --store dummy:// --readonly-mode --parse "$f" 2>&1 >/dev/null); then
    pass "parse $f"
  else
    fail "parse $f"
    printf '%s\n' "$out" | sed 's/^/    /'
  fi
done

# --- 2. nixpkgs-free unit tests -------------------------------------------------
# Files marked "ci: needs nixpkgs.lib" (the evalModules harness) are skipped.
for t in nix/tests/*.nix; do
  [ -e "$t" ] || continue
  if grep -q 'ci: needs nixpkgs.lib' "$t"; then
    echo "SKIP $t (needs nixpkgs.lib)"
    continue
  fi
  if out=$(nix_eval --json "$t" 2>&1); then
    n=$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' <<<"$out")
    pass "unit tests $t ($n cases)"
  else
    fail "unit tests $t"
    printf '%s\n' "$out" | sed 's/^/    /'
  fi
done

# The harness must notice a failing case (guards against a test file that
# silently stops asserting).
if nix_eval -E '(import ./nix/lib).bindString { port = 0; }' >/dev/null 2>&1; then
  fail "nix/lib rejects an invalid port"
else
  pass "nix/lib rejects an invalid port"
fi

# The VM tests' Python test scripts, extracted with stand-ins for pkgs, must
# at least compile (the VMs themselves need nixpkgs and KVM).
for vm_test in nix/vm-test.nix nix/vm-test-pgbouncer.nix; do
  # shellcheck disable=SC2016  # ${name} is Nix, not shell
  if out=$(nix_eval --json -E '
    import ./'"$vm_test"' {
      pkgs = {
        writeText = name: _: "/nix/store/00000000000000000000000000000000-${name}";
        postgresql = "/nix/store/00000000000000000000000000000000-postgresql";
        testers.runNixOSTest = test: test.testScript;
      };
      module = { };
    }' 2>&1) && python3 -c 'import json, sys; compile(json.loads(sys.argv[1]), sys.argv[2] + " testScript", "exec")' "$out" "$vm_test"; then
    pass "VM test script ($vm_test) is valid Python"
  else
    fail "VM test script ($vm_test) is valid Python"
    printf '%s\n' "$out" | tail -5 | sed 's/^/    /'
  fi
done

# --- 3. flake.nix / flake.lock -------------------------------------------------
if out=$(nix_eval --json -E '
  let f = import ./flake.nix; in {
    inputs = builtins.attrNames f.inputs;
    url = f.inputs.nixpkgs.url;
    outputArgs = builtins.functionArgs f.outputs;
  }' 2>&1); then
  if python3 - "$out" <<'PY'
import json, sys
got = json.loads(sys.argv[1])
ok = (got["inputs"] == ["nixpkgs"]
      and got["url"] == "github:NixOS/nixpkgs/nixos-26.05"
      and sorted(got["outputArgs"]) == ["nixpkgs", "self"])
if not ok:
    print("    got:", got)
sys.exit(0 if ok else 1)
PY
  then pass "flake.nix has the single input nixpkgs = github:NixOS/nixpkgs/nixos-26.05"
  else fail "flake.nix inputs"
  fi
else
  fail "evaluate flake.nix inputs"
  printf '%s\n' "$out" | sed 's/^/    /'
fi

if python3 - flake.lock >"$tmp/lock-check" 2>&1 <<'PY'
import json, sys

# nix-facts §1.1 (nix-community/NixOS-WSL@787a4c12 flake.lock), verbatim.
EXPECTED_NIXPKGS = {
    "locked": {
        "lastModified": 1783703440,
        "narHash": "sha256-O3/YajjWo001VUIgD8BwaRdSNLUFe7nZ1qV5TwhRBcw=",
        "owner": "NixOS",
        "repo": "nixpkgs",
        "rev": "8f0500b9660505dc3cb647775fe9a978a74b5283",
        "type": "github",
    },
    "original": {
        "owner": "NixOS",
        "ref": "nixos-26.05",
        "repo": "nixpkgs",
        "type": "github",
    },
}
problems = []
try:
    with open(sys.argv[1]) as fh:
        lock = json.load(fh)
except (OSError, ValueError) as exc:
    print(f"    flake.lock is not valid JSON: {exc}")
    sys.exit(1)
if lock.get("version") != 7:
    problems.append(f"version is {lock.get('version')!r}, expected 7")
if lock.get("root") != "root":
    problems.append(f"root is {lock.get('root')!r}, expected 'root'")
nodes = lock.get("nodes", {})
if sorted(nodes) != ["nixpkgs", "root"]:
    problems.append(f"nodes are {sorted(nodes)}, expected ['nixpkgs', 'root']")
if nodes.get("root") != {"inputs": {"nixpkgs": "nixpkgs"}}:
    problems.append(f"root node is {nodes.get('root')}, expected only the nixpkgs input")
if nodes.get("nixpkgs") != EXPECTED_NIXPKGS:
    problems.append(f"nixpkgs node differs from the pin: {nodes.get('nixpkgs')}")
for p in problems:
    print("    " + p)
sys.exit(1 if problems else 0)
PY
then pass "flake.lock is valid JSON and pins nixpkgs nixos-26.05 @ 8f0500b9 (only input)"
else
  fail "flake.lock"
  cat "$tmp/lock-check"
fi

# --- 4. Python dependency names: nix/package.nix vs pyproject.toml -----------
if python3 nix/check_python_deps.py; then
  pass "python dependency names match"
else
  fail "python dependency names"
fi

# The checker must catch a dependency that Nix lacks (self-test on a copy).
python3 - pyproject.toml "$tmp/pyproject.toml" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
text, n = re.subn(r"(?m)^dependencies\s*=\s*\[", 'dependencies = [\n    "not-in-nix-check>=1",', text, count=1)
assert n == 1, "no [project].dependencies list found"
open(sys.argv[2], "w").write(text)
PY
if python3 nix/check_python_deps.py --pyproject "$tmp/pyproject.toml" >"$tmp/out" 2>&1; then
  fail "dependency checker detects a dependency missing from Nix"
else
  if grep -q "^FAIL .*missing .*'not-in-nix-check'" "$tmp/out"; then
    pass "dependency checker detects a dependency missing from Nix"
  else
    fail "dependency checker detects a dependency missing from Nix (unexpected output)"
    sed 's/^/    /' "$tmp/out"
  fi
fi

# --- 5. the pytest check comes from nix/pytest-check.nix ----------------------
# nix/tests/rehearse-check.sh rehearses the check from that file, so
# nix/package.nix must take its source and check settings from it too.
if out=$(nix_eval --json -E '
  let
    check = import ./nix/pytest-check.nix;
    args = builtins.functionArgs (import ./nix/package.nix);
  in builtins.filter (name: !(args ? ${name})) check.checkTools' 2>&1) && [ "$out" = "[]" ]; then
  pass "every checkTools entry of nix/pytest-check.nix is an argument of nix/package.nix"
else
  fail "checkTools of nix/pytest-check.nix missing from nix/package.nix's arguments: $out"
fi
missing=()
for needle in 'check = import ./pytest-check.nix' 'map (path: ../. + "/${path}") check.source' \
  'map (name: checkToolsByName.${name}) check.checkTools' 'inherit (check) pythonImportsCheck' \
  postgresqlTestUserOptions redisTestPort disabledTestMarks disabledTests preCheck; do
  grep -qF -- "$needle" nix/package.nix || missing+=("$needle")
done
if [ "${#missing[@]}" -eq 0 ]; then
  pass "nix/package.nix takes its source and check settings from nix/pytest-check.nix"
else
  fail "nix/package.nix does not use nix/pytest-check.nix for: ${missing[*]}"
fi

# --- summary ------------------------------------------------------------------
if [ "$failures" -ne 0 ]; then
  echo "FAIL nix checks: $failures failure(s)"
  exit 1
fi
echo "PASS nix checks"
