# NixOS VM test (pkgs.testers.runNixOSTest) of an API-only host: node `db`
# runs PostgreSQL on the network (scram-sha-256), node `api` runs
# services.balsam through a local PgBouncer (database.pgbouncer) with the
# direct URL for migrations and backups. It checks that the server answers
# through PgBouncer, that migrations and backups go straight to PostgreSQL
# (they still work with PgBouncer stopped), and PgBouncer's peer
# authentication.
{
  pkgs,
  module,
}:
let
  port = 8000;
  base = "http://127.0.0.1:${toString port}";
  # Test-only secrets; a real deployment keeps them outside the Nix store.
  dbPassword = "vm-test-db-password";
  secretKey = pkgs.writeText "balsam-vm-test-secret-key" "vm-test-secret-key-0123456789abcdef";
  directUrl = pkgs.writeText "balsam-vm-test-direct-url" "postgresql://balsam:${dbPassword}@db:5432/balsam";
  pgbouncerAuth = pkgs.writeText "balsam-vm-test-pgbouncer-auth" ''"balsam" "${dbPassword}"'';
in
pkgs.testers.runNixOSTest {
  name = "balsam-service-pgbouncer";

  nodes.db = {
    services.postgresql = {
      enable = true;
      enableTCPIP = true;
      # Inserted above nixpkgs' default rules (peer on the socket).
      authentication = ''
        host balsam balsam 0.0.0.0/0 scram-sha-256
        host balsam balsam ::/0 scram-sha-256
      '';
      ensureDatabases = [ "balsam" ];
      ensureUsers = [
        {
          name = "balsam";
          ensureDBOwnership = true;
        }
      ];
    };
    networking.firewall.allowedTCPPorts = [ 5432 ];
  };

  nodes.api =
    { pkgs, ... }:
    {
      imports = [ module ];

      services.balsam = {
        enable = true;
        inherit port;
        workers = 2;
        secretFiles.BALSAM_AUTH_SECRET_KEY = "${secretKey}";
        settings.BALSAM_AUTH_LOGIN_METHODS = [ "password" ];
        database = {
          directUrlFile = "${directUrl}";
          pgbouncer = {
            enable = true;
            host = "db";
            poolSize = 4;
            authFile = "${pgbouncerAuth}";
          };
        };
        backup.enable = true;
      };

      environment.systemPackages = [ pkgs.curl ];

      virtualisation.memorySize = 2048;
    };

  testScript = ''
    ${import ./vm-test-common.nix {
      node = "api";
      inherit base;
    }}
    bouncer = "postgresql://balsam@/balsam?host=/run/pgbouncer&port=6432"

    with subtest("the remote database accepts the balsam role with a password"):
        db.start()
        db.wait_for_unit("postgresql.target")
        db.succeed("runuser -u postgres -- psql -c \"ALTER ROLE balsam PASSWORD '${dbPassword}'\"")
        db.wait_for_open_port(5432)

    with subtest("PgBouncer starts, then the service migrates (direct) and serves (through PgBouncer)"):
        api.start()
        api.wait_for_unit("pgbouncer.service")
        api.succeed("test -S /run/pgbouncer/.s.PGSQL.6432")
        api.wait_for_unit("balsam.service")
        api.wait_for_open_port(${toString port})
        api.wait_until_succeeds(f"curl --fail --silent {base}/healthz")
        ready = curl_json(f"{base}/readyz")
        assert ready["status"] == "ready" and ready["schema"] == ready["expected_schema"], ready
        env = api.succeed("systemctl show -P Environment balsam.service")
        assert f"BALSAM_DATABASE_URL={bouncer}" in env and "BALSAM_DATABASE_PGBOUNCER=true" in env, env

    with subtest("an account and a site, written through PgBouncer"):
        auth = login_and_create_site("alice", "vm-test-password", "vm-site")
        db.succeed("runuser -u postgres -- psql -d balsam -tAc \"SELECT name FROM sites\" | grep -x vm-site")

    with subtest("PgBouncer lets the balsam user in by peer credentials, nobody else"):
        api.succeed(f"runuser -u balsam -- ${pkgs.postgresql}/bin/psql '{bouncer}' -tAc 'SELECT 1' | grep -x 1")
        api.fail(f"${pkgs.postgresql}/bin/psql '{bouncer}' -tAc 'SELECT 1'")

    with subtest("migrations and backups go straight to PostgreSQL: they work with PgBouncer stopped"):
        api.succeed("systemctl stop pgbouncer.service")
        api.fail("systemctl is-active balsam.service")  # Requires=pgbouncer.service
        api.succeed("balsam-manage server migrate | grep 'schema already at'")
        api.succeed("systemctl start balsam-backup.service")
        dumps = api.succeed("find /var/lib/balsam/backups -type f -name 'balsam-*.dump' -size +0 -print").split()
        assert dumps, "no dump in /var/lib/balsam/backups"

    with subtest("the service comes back with PgBouncer"):
        api.succeed("systemctl start balsam.service")
        api.wait_for_unit("pgbouncer.service")
        api.wait_until_succeeds(f"curl --fail --silent {base}/healthz")
        sites = curl_json(f"{auth} {base}/sites/")
        assert "vm-site" in json.dumps(sites), sites
  '';
}
