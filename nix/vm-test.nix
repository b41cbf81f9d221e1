# NixOS VM test (pkgs.testers.runNixOSTest): boots a machine with
# services.balsam (local PostgreSQL and Redis, backup and prune timers,
# metrics with a token), then drives the HTTP API with curl, runs a backup and
# a prune, and reloads gunicorn.
{
  pkgs,
  module,
}:
let
  port = 8000;
  base = "http://127.0.0.1:${toString port}";
  # Test-only secret; a real deployment points secretFiles at a file outside
  # the Nix store (e.g. /run/secrets/...).
  secretKey = pkgs.writeText "balsam-vm-test-secret-key" "vm-test-secret-key-0123456789abcdef";
  metricsToken = pkgs.writeText "balsam-vm-test-metrics-token" "vm-test-metrics-token";
in
pkgs.testers.runNixOSTest {
  name = "balsam-service";

  nodes.machine =
    { pkgs, ... }:
    {
      imports = [ module ];

      services.balsam = {
        enable = true;
        inherit port;
        workers = 2;
        database.createLocally = true;
        redis.createLocally = true;
        secretFiles.BALSAM_AUTH_SECRET_KEY = "${secretKey}";
        settings.BALSAM_AUTH_LOGIN_METHODS = [ "password" ];
        backup = {
          enable = true;
          retention.keep = 3;
        };
        metrics = {
          enable = true;
          tokenFile = "${metricsToken}";
        };
        prune = {
          enable = true;
          jobsOlderThanDays = 30;
        };
      };

      environment.systemPackages = [
        pkgs.curl
        pkgs.jq
      ];

      virtualisation.memorySize = 2048;
    };

  testScript = ''
    ${import ./vm-test-common.nix {
      node = "machine";
      inherit base;
    }}

    start_all()

    with subtest("service starts after its migrations and listens"):
        machine.wait_for_unit("postgresql.target")
        machine.wait_for_unit("redis-balsam.service")
        machine.wait_for_unit("balsam.service")
        machine.wait_for_open_port(${toString port})
        machine.wait_until_succeeds(f"curl --fail --silent {base}/healthz")
        machine.succeed("runuser -u balsam -- psql -d balsam -tAc 'SELECT version_num FROM alembic_version' | grep .")
        ready = curl_json(f"{base}/readyz")
        assert ready["status"] == "ready" and ready["schema"] == ready["expected_schema"], ready

    with subtest("registration is closed; an account from the CLI logs in and creates a site"):
        status = machine.succeed(
            f"curl --silent --output /dev/null --write-out '%{{http_code}}' -X POST -H 'Content-Type: application/json' "
            f"-d '{{\"username\": \"mallory\", \"password\": \"x\"}}' {base}/auth/password/register"
        )
        assert status.strip() == "403", status
        auth = login_and_create_site("alice", "vm-test-password", "vm-site")
        me = curl_json(f"{auth} {base}/auth/password/me")
        assert me["username"] == "alice", me

    with subtest("balsam-manage runs the CLI as the service user"):
        machine.succeed("balsam-manage server user list | grep -w alice")
        # The deployed package migrates; the service already did at start.
        machine.succeed("balsam-manage server migrate | grep 'schema already at'")
        machine.fail("runuser -u balsam -- balsam-manage server user list")

    with subtest("logs go to the LogsDirectory, which logrotate handles"):
        machine.succeed("test -s /var/log/balsam/gunicorn-access.log")
        machine.succeed("ls /var/log/balsam/balsam-server-*.log")
        machine.succeed("systemctl start logrotate.service")

    with subtest("backup timer is scheduled and the backup service writes a dump"):
        machine.succeed("systemctl list-timers --all | grep balsam-backup.timer")
        machine.succeed("systemctl start balsam-backup.service")
        dumps = machine.succeed("find /var/lib/balsam/backups -type f -name 'balsam-*.dump' -size +0 -print").split()
        assert dumps, "no dump in /var/lib/balsam/backups"
        machine.succeed(f"runuser -u balsam -- pg_restore --list {dumps[0]} | grep -i 'TABLE DATA'")

    with subtest("metrics need the token and count every worker"):
        machine.fail(f"curl --fail --silent {base}/metrics")
        metrics = machine.succeed(
            f"curl --fail --silent -H 'Authorization: Bearer vm-test-metrics-token' {base}/metrics"
        )
        assert "balsam_http_requests_total" in metrics and "balsam_jobs" in metrics, metrics[:2000]
        machine.succeed("ls /run/balsam/balsam-metrics-*/counter_*.db")

    with subtest("prune timer is scheduled and the prune service runs"):
        machine.succeed("systemctl list-timers --all | grep balsam-prune.timer")
        machine.succeed("systemctl start balsam-prune.service")
        machine.succeed("journalctl -u balsam-prune.service | grep 'deleted 0 jobs'")

    with subtest("reload sends HUP to gunicorn and the service keeps serving"):
        pid_before = machine.succeed("systemctl show -P MainPID balsam.service").strip()
        machine.succeed("systemctl reload balsam.service")
        machine.sleep(2)
        machine.wait_for_unit("balsam.service")
        pid_after = machine.succeed("systemctl show -P MainPID balsam.service").strip()
        assert pid_before == pid_after, f"reload restarted the master: {pid_before} -> {pid_after}"
        machine.wait_until_succeeds(f"curl --fail --silent {base}/healthz")
        sites = curl_json(f"{auth} {base}/sites/")
        assert "vm-site" in json.dumps(sites), sites
  '';
}
