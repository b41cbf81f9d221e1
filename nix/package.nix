# The Balsam service as a Python application from nixpkgs' python3 (3.13 on
# nixos-26.05). Dependency names come from ./python-deps.nix, which CI compares
# with pyproject.toml (nix/check_python_deps.py).
#
# The pytest suite is configured here but off by default (doCheck = false) so
# that `nix build`/`nixos-rebuild` do not run it; the flake's `checks.pytest`
# turns it on. It gets PostgreSQL from postgresqlTestHook and Redis from
# redisTestHook; the test harness reads PGHOST/PGUSER/PGDATABASE and
# REDIS_SOCKET. The source fileset and the check's settings live in
# ./pytest-check.nix, which nix/tests/rehearse-check.sh also reads.
{
  lib,
  stdenv,
  python3,
  postgresql_17,
  valkey,
  postgresqlTestHook,
  redisTestHook,
}:
let
  deps = import ./python-deps.nix;
  check = import ./pytest-check.nix;
  # The check's PATH tools, by the names ./pytest-check.nix uses.
  checkToolsByName = { inherit postgresql_17 valkey; };
  pyproject = lib.importTOML ../pyproject.toml;
  ps = python3.pkgs;
  # nixpkgs' package when it has one, else the one built here.
  local = import ./python-local.nix ps;
  pick = map (name: ps.${name} or local.${name});
in
ps.buildPythonApplication {
  pname = "balsam-service";
  inherit (pyproject.project) version;
  pyproject = true;

  # Only what the build and the tests need (./pytest-check.nix).
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions (map (path: ../. + "/${path}") check.source);
  };

  build-system = pick deps.build;
  dependencies = pick deps.runtime;

  # psycopg2-binary is PyPI's wheel of psycopg2; nixpkgs builds psycopg2
  # from source against libpq. Drop the binary name from the wheel metadata
  # so the runtime dependency check accepts nixpkgs' psycopg2.
  pythonRemoveDeps = deps.removeDeps;
  pythonRelaxDeps = deps.relaxDeps;

  postInstall = ''
    install -Dm755 ${./balsam-gunicorn.py} $out/bin/balsam-gunicorn
  '';

  inherit (check) pythonImportsCheck;

  doCheck = false;

  nativeCheckInputs = [
    ps.pytestCheckHook
    redisTestHook
  ]
  ++ map (name: checkToolsByName.${name}) check.checkTools
  ++ pick (lib.remove "pytest" deps.check)
  # postgresqlTestHook is marked broken on Darwin in nixpkgs.
  ++ lib.optional stdenv.hostPlatform.isLinux postgresqlTestHook;

  inherit (check)
    postgresqlTestUserOptions
    redisTestPort
    disabledTestMarks
    disabledTests
    preCheck
    ;

  __darwinAllowLocalNetworking = true;

  passthru = {
    python = python3;
    inherit deps;
  };

  meta = {
    description = "Central REST service for the Balsam HPC workflow system";
    license = lib.licenses.bsd3;
    mainProgram = "balsam";
    platforms = lib.platforms.unix;
  };
}
