# `nix run .#migrate` and `nix run` (the local development server).
{
  lib,
  writeShellApplication,
  package,
  postgresql_17,
  redis,
}:
let
  migrate = writeShellApplication {
    name = "balsam-migrate";
    runtimeInputs = [ package ];
    text = ''
      if [ -z "''${BALSAM_DATABASE_URL:-}" ] && [ -z "''${BALSAM_DATABASE_URL_FILE:-}" ]; then
        echo "balsam-migrate: set BALSAM_DATABASE_URL, e.g." >&2
        echo "  BALSAM_DATABASE_URL='postgresql://user:password@db.example.org/balsam' nix run .#migrate" >&2
        echo "On a NixOS host with services.balsam, run the deployed CLI instead: sudo balsam-manage server migrate" >&2
        exit 2
      fi
      exec balsam server migrate "$@"
    '';
  };

  # `balsam server dev` needs initdb/pg_ctl/postgres and redis-server; in Nix
  # they come from PATH (the pip-only embedded servers are not packaged).
  dev = writeShellApplication {
    name = "balsam-dev";
    runtimeInputs = [
      package
      postgresql_17
      redis
    ];
    text = ''
      exec balsam server dev "$@"
    '';
  };
in
{
  migrate = {
    type = "app";
    program = lib.getExe migrate;
    meta.description = "Upgrade the Balsam database to the latest schema (balsam server migrate; reads BALSAM_DATABASE_URL)";
  };
  default = {
    type = "app";
    program = lib.getExe dev;
    meta.description = "Run a local Balsam development server (balsam server dev) with PostgreSQL 17 and Redis from nixpkgs";
  };
}
