# The Balsam service as a Python application from nixpkgs' python3 (3.13 on
# nixos-26.05). Dependency names come from ./python-deps.nix, which CI compares
# with pyproject.toml (nix/check_python_deps.py).
#
# The pytest suite is configured here but off by default (doCheck = false) so
# that `nix build`/`nixos-rebuild` do not run it; the flake's `checks.pytest`
# turns it on. It gets PostgreSQL from postgresqlTestHook and Redis from
# redisTestHook; the test harness reads PGHOST/PGUSER/PGDATABASE and
# REDIS_SOCKET.
{
  lib,
  stdenv,
  python3,
  postgresql_17,
  postgresqlTestHook,
  redisTestHook,
}:
let
  deps = import ./python-deps.nix;
  pyproject = lib.importTOML ../pyproject.toml;
  ps = python3.pkgs;
  pick = map (name: ps.${name});
in
ps.buildPythonApplication {
  pname = "balsam-service";
  inherit (pyproject.project) version;
  pyproject = true;

  # Only what the build and the tests need, so edits elsewhere (docs, CI,
  # nix/) do not cause a rebuild.
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../pyproject.toml
      ../balsam
      ../tests
      ../tools # tests/test_differential_tool.py imports its pure parts
      (lib.fileset.maybeMissing ../README.md)
      (lib.fileset.maybeMissing ../LICENSE)
    ];
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

  pythonImportsCheck = [
    "balsam"
    "balsam.server.main"
    "uvicorn_worker"
  ];

  doCheck = false;

  nativeCheckInputs = [
    ps.pytestCheckHook
    postgresql_17
    redisTestHook
  ]
  ++ pick (lib.remove "pytest" deps.check)
  # postgresqlTestHook is marked broken on Darwin in nixpkgs.
  ++ lib.optional stdenv.hostPlatform.isLinux postgresqlTestHook;

  # The tests create and drop databases of their own.
  postgresqlTestUserOptions = "LOGIN SUPERUSER";
  # Unix socket only; no TCP port in the build sandbox.
  redisTestPort = 0;

  # Both need the network (pip): the published client, and a wheel
  # installed into a fresh venv.
  disabledTestMarks = [
    "published_client"
    "needs_network"
  ];

  preCheck = ''
    export HOME="$(mktemp -d)"
    # `serving` tests start gunicorn/the CLI from PATH.
    export PATH="$out/bin:$PATH"
  '';

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
