# `nix develop`: the Python environment with every runtime and test
# dependency, PostgreSQL 17 and Redis (the tests start them from PATH when
# no PGHOST/REDIS_SOCKET is given), ruff and mypy.
{
  lib,
  mkShell,
  python3,
  postgresql_17,
  redis,
  ruff,
  writeShellScriptBin,
}:
let
  deps = import ./python-deps.nix;
  pythonEnv = python3.withPackages (
    ps:
    let
      local = import ./python-local.nix ps;
    in
    map (name: ps.${name} or local.${name}) (deps.runtime ++ deps.check ++ deps.devPython ++ deps.build)
  );
  # The `balsam` console script, run from the work tree.
  balsamFromTree = writeShellScriptBin "balsam" ''
    exec ${lib.getExe pythonEnv} -c 'import sys; sys.argv[0] = "balsam"; from balsam.cli import main; sys.exit(main())' "$@"
  '';
in
mkShell {
  packages = [
    pythonEnv
    balsamFromTree
    postgresql_17
    redis
    ruff
  ];

  # Tell ./scripts/test to use this environment's python3 instead of
  # creating ./.venv with pip.
  BALSAM_NO_VENV = "1";

  shellHook = ''
    # Import `balsam` from the work tree, not from an installed copy.
    export PYTHONPATH="$PWD''${PYTHONPATH:+:$PYTHONPATH}"
  '';
}
