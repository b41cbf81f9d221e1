# The Python dependency names of the Nix package, as nixpkgs attribute names
# in python3Packages. Plain data: nix/package.nix and nix/devshell.nix read it,
# and nix/check_python_deps.py compares it against pyproject.toml in CI.
{
  # [project].dependencies, mapped to nixpkgs names.
  runtime = [
    "fastapi"
    "starlette"
    "pydantic"
    "pydantic-settings"
    "sqlalchemy"
    "alembic"
    "psycopg2"
    "redis"
    "gunicorn"
    "uvicorn"
    "uvicorn-worker"
    "httptools"
    "uvloop"
    "pyjwt"
    "argon2-cffi"
    "python-multipart"
    "httpx"
    "websockets"
    "jinja2"
    "prometheus-client"
    # Not in nixpkgs 26.05: built by ./fastapi-offline.nix (./python-local.nix).
    "fastapi-offline"
  ];

  # Test runner and plugins (pytest itself comes with pytestCheckHook in the
  # package check and is listed here for the devShell).
  check = [
    "pytest"
    "pytest-asyncio"
    "pytest-timeout"
    # tests/test_deploy_files.py parses docker-compose.yml
    "pyyaml"
  ];

  # Development-only tools that live inside the devShell's Python environment
  # (mypy needs to import pydantic for its plugin, so it cannot be a separate
  # tool). ruff is a standalone binary and comes from top-level pkgs. pip:
  # tests/test_wheel.py runs `python -m pip wheel` (in the devShell, which has
  # the network; the sandboxed check deselects it as needs_network).
  devPython = [
    "mypy"
    "types-pyyaml"
    "pip"
  ];

  build = [ "setuptools" ];

  # [build-system].requires entries nixpkgs does not need: setuptools (>= 70.1)
  # builds wheels itself, and nixpkgs' pypa build runs without isolation.
  ignoredBuildRequires = [ "wheel" ];

  # PyPI name (PEP 503 normalised) -> nixpkgs attribute, where they differ.
  pypiToNix = {
    "psycopg2-binary" = "psycopg2";
  };

  # Requires-Dist entries stripped from the wheel before nixpkgs' runtime
  # dependency check (pythonRemoveDeps); each is replaced by the nixpkgs
  # package in pypiToNix.
  removeDeps = [ "psycopg2-binary" ];

  # pyproject bounds that nixpkgs' version may break (sqlalchemy: `<2.1`).
  # pythonRelaxDeps drops every version specifier of these names, lower
  # bounds included (python-relax-deps-hook.sh), so nixpkgs' runtime-deps
  # check then only requires that the package is present. Every other
  # dependency keeps its specifiers, which that check enforces.
  relaxDeps = [ "sqlalchemy" ];

  # Optional-dependency groups that are not built in Nix: their packages are
  # not in nixpkgs. In Nix, tests take PostgreSQL/Redis from PATH or from the
  # postgresqlTestHook/redisTestHook instead.
  excludedExtras = [ "local" ];
}
