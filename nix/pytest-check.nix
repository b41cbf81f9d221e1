# The package's sandboxed pytest check (checks.<system>.pytest), as plain
# data without nixpkgs. nix/package.nix builds its source fileset and check
# attributes from this file, and nix/tests/rehearse-check.sh reads the same
# file to rehearse that check on a machine without Nix; so the two cannot
# drift apart. Change the check here, not in package.nix.
{
  # Repository paths (files or whole directories) in the package source, so
  # edits elsewhere (CI, nix/, other docs) do not rebuild the package. The
  # tests read every file they need from this tree: a test that opens a file
  # outside it fails in the sandbox.
  source = [
    "pyproject.toml"
    "README.md"
    "balsam"
    "tests"
    # tests/test_differential_tool.py imports its pure parts
    "tools"
    # tests/test_settings_doc.py
    "docs/settings.md"
    ".env.example"
    # tests/test_deploy_files.py
    "docker-compose.yml"
    "Dockerfile"
    ".dockerignore"
    "requirements/deploy.txt"
    "deploy"
  ];

  # Top-level nixpkgs packages the check puts on PATH (nativeCheckInputs),
  # besides the Python environment and the test hooks. Each name must be an
  # argument of nix/package.nix. valkey: redisTestHook starts its server by
  # absolute path and puts none on PATH, but tests/test_redis_outage.py and
  # `balsam server dev` (tests/test_dev_server.py) start their own.
  checkTools = [
    "postgresql_17"
    "valkey"
  ];

  # pytestCheckHook: `-m "not (a) and not (b)"` and `-k ...`.
  # Both marks need the network (pip): the published client, and a wheel
  # installed into a fresh venv.
  disabledTestMarks = [
    "published_client"
    "needs_network"
    # podman and a browser do not exist in the build sandbox (they would
    # skip there anyway; deselecting says so up front).
    "compose"
    "browser"
    # pgbouncer, root and network namespaces: none in the build sandbox.
    "multihost"
    "pgbouncer"
  ];
  disabledTests = [ ];

  # postgresqlTestHook: the tests create and drop databases of their own.
  postgresqlTestUserOptions = "LOGIN SUPERUSER";
  # redisTestHook: unix socket only, no TCP port in the build sandbox.
  redisTestPort = 0;

  # Runs before the hooks start PostgreSQL and Redis ($out is the installed
  # package).
  preCheck = ''
    # The sandbox has no locale settings, so postgresqlTestHook's initdb
    # would make a SQL_ASCII cluster, and databases created from it reject
    # non-ASCII text. nixpkgs' glibc ships C.UTF-8.
    export LC_ALL=C.UTF-8
    export HOME="$(mktemp -d)"
    # `serving` tests start gunicorn/the CLI from PATH.
    export PATH="$out/bin:$PATH"
  '';

  pythonImportsCheck = [
    "balsam"
    "balsam.server.main"
    "uvicorn_worker"
  ];
}
