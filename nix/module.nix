# NixOS module: services.balsam
#
# Runs the Balsam service under gunicorn (uvicorn workers) as the fixed system
# user `balsam`, optionally with a local PostgreSQL (peer authentication over
# /run/postgresql) or, on an API-only host, a remote one (URL from a secret
# file), optionally through a local PgBouncer (services.pgbouncer, transaction
# pooling, peer authentication over /run/pgbouncer); a local Redis (unix
# socket), a pg_dump backup timer and a retention (prune) timer.
#
# The pure parts (settings -> environment, bind string, credentials, backup
# arguments) live in ./lib/default.nix and are unit-tested by
# ./tests/lib.nix without nixpkgs.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  balsamLib = import ./lib;

  cfg = config.services.balsam;

  user = "balsam";
  group = "balsam";
  stateDir = "/var/lib/balsam";
  runtimeDir = "/run/balsam";
  logsDir = "/var/log/balsam";

  redisServer = config.services.redis.servers.balsam;

  pgb = cfg.database.pgbouncer;
  pgbSettings = config.services.pgbouncer.settings.pgbouncer;
  # The auth_file reaches pgbouncer.service as a credential (root-only
  # source file); PgBouncer reads it from the unit's credentials directory.
  pgbouncerAuthCredential = "balsam-pgbouncer-auth";
  pgbouncerAuthPath = "/run/credentials/pgbouncer.service/${pgbouncerAuthCredential}";
  pgbouncerHbaFile = pkgs.writeText "balsam-pgbouncer-hba.conf" (
    balsamLib.pgbouncerHba {
      database = user;
      inherit user;
    }
  );

  # A URL straight to PostgreSQL for migrations, backups and prune, from any
  # of the places the service reads it.
  hasDirectUrl =
    cfg.database.directUrlFile != null
    || cfg.secretFiles ? BALSAM_DATABASE_DIRECT_URL
    || (cfg.settings.BALSAM_DATABASE_DIRECT_URL or null) != null;

  bind = balsamLib.bindString {
    inherit (cfg) listenAddress port unixSocket;
  };

  # Everything the server, the migration step and the backup job read.
  environment =
    balsamLib.settingsToEnv cfg.settings
    // {
      BALSAM_BIND = bind;
    }
    // lib.optionalAttrs (cfg.workers != null) {
      GUNICORN_WORKERS = toString cfg.workers;
    };

  credentials = balsamLib.loadCredentials cfg.secretFiles;

  exe = lib.getExe cfg.package;

  backupCommand = balsamLib.systemdCommand (
    [
      exe
      "server"
      "backup"
    ]
    ++ balsamLib.backupArgs {
      inherit (cfg.backup) directory;
      inherit (cfg.backup.retention) keep maxAgeDays;
    }
  );

  pruneCommand = balsamLib.systemdCommand (
    [
      exe
      "server"
      "prune"
    ]
    ++ balsamLib.pruneArgs {
      inherit (cfg.prune) eventsOlderThanDays jobsOlderThanDays jobStates;
    }
  );

  # `balsam-manage ...`: the balsam CLI of the deployed package as the
  # service user, with the service's environment, environment file and
  # credentials, in a transient systemd unit (run it as root, e.g.
  # `sudo balsam-manage server migrate`). Unlike netbox-manage's runuser,
  # systemd-run can hand over the LoadCredential= secrets, which only root
  # can read.
  manage = pkgs.writeShellScriptBin "balsam-manage" ''
    if [ "$(${pkgs.coreutils}/bin/id -u)" != 0 ]; then
      echo "balsam-manage: run it as root (sudo balsam-manage ...); it runs the balsam CLI as user ${user}" >&2
      exit 1
    fi
    if [ -t 0 ] && [ -t 1 ]; then io=--pty; else io=--pipe; fi
    exec ${config.systemd.package}/bin/systemd-run --quiet --wait --collect "$io" \
      --uid=${user} --gid=${group} --working-directory=${stateDir} \
      ${
        lib.escapeShellArgs (
          lib.mapAttrsToList (n: v: "--setenv=${n}=${v}") (
            environment // { PATH = lib.makeBinPath [ cfg.backup.postgresqlPackage pkgs.coreutils ]; }
          )
          ++ map (c: "--property=LoadCredential=${c}") credentials
          ++ lib.optional (cfg.environmentFile != null) "--property=EnvironmentFile=${cfg.environmentFile}"
          ++ lib.optional cfg.redis.createLocally "--property=SupplementaryGroups=${redisServer.group}"
        )
      } \
      ${exe} "$@"
  '';

  dbUnits = lib.optional cfg.database.createLocally "postgresql.target";
  # Only the server goes through PgBouncer; migrations (its ExecStartPre
  # included), backups and prune use the direct URL.
  pgbouncerUnits = lib.optional pgb.enable "pgbouncer.service";
  redisUnits = lib.optional cfg.redis.createLocally "redis-balsam.service";

  # Hardening shared by the units; the set follows nixpkgs' paperless module.
  hardening = {
    CapabilityBoundingSet = "";
    DeviceAllow = "";
    LockPersonality = true;
    MemoryDenyWriteExecute = true;
    NoNewPrivileges = true;
    PrivateDevices = true;
    PrivateMounts = true;
    PrivateTmp = true;
    PrivateUsers = true;
    ProcSubset = "pid";
    ProtectClock = true;
    ProtectControlGroups = true;
    ProtectHome = true;
    ProtectHostname = true;
    ProtectKernelLogs = true;
    ProtectKernelModules = true;
    ProtectKernelTunables = true;
    ProtectProc = "invisible";
    ProtectSystem = "strict";
    RemoveIPC = true;
    RestrictAddressFamilies = [
      "AF_UNIX"
      "AF_INET"
      "AF_INET6"
    ];
    RestrictNamespaces = true;
    RestrictRealtime = true;
    RestrictSUIDSGID = true;
    SystemCallArchitectures = "native";
    SystemCallFilter = [
      "@system-service"
      "~@privileged @setuid @keyring"
    ];
    UMask = "0077";
  };

  # User, environment and credentials common to every Balsam unit.
  commonServiceConfig = {
    User = user;
    Group = group;
    WorkingDirectory = stateDir;
    StateDirectory = "balsam";
    StateDirectoryMode = "0750";
    SupplementaryGroups = lib.optional cfg.redis.createLocally redisServer.group;
    LoadCredential = credentials;
    EnvironmentFile = lib.optional (cfg.environmentFile != null) cfg.environmentFile;
  };
in
{
  options.services.balsam = {
    enable = lib.mkEnableOption "the Balsam service, the central REST server of the Balsam HPC workflow system";

    package = lib.mkOption {
      type = lib.types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = lib.literalMD "the flake's `nix/package.nix`, built with this system's nixpkgs (`pkgs.callPackage`)";
      description = "The Balsam service package. It must provide `bin/balsam` and `bin/balsam-gunicorn`.";
    };

    listenAddress = lib.mkOption {
      type = lib.types.str;
      default = "127.0.0.1";
      example = "0.0.0.0";
      description = "Address gunicorn listens on (ignored when {option}`services.balsam.unixSocket` is set).";
    };

    port = lib.mkOption {
      type = lib.types.port;
      default = 8000;
      description = "TCP port gunicorn listens on (ignored when {option}`services.balsam.unixSocket` is set).";
    };

    unixSocket = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      example = "${runtimeDir}/balsam.sock";
      description = ''
        Listen on this unix socket instead of a TCP address, e.g. behind
        nginx. It must be a file directly in `${runtimeDir}`, the service's
        runtime directory (mode 0755): under `ProtectSystem=strict` that is
        the only place the service may create it.
      '';
    };

    workers = lib.mkOption {
      type = lib.types.nullOr lib.types.ints.positive;
      default = null;
      example = 4;
      description = "Number of gunicorn worker processes (GUNICORN_WORKERS); `null` keeps the default of the shipped gunicorn configuration.";
    };

    openFirewall = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Open {option}`services.balsam.port` in the firewall.";
    };

    extraGunicornArgs = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      example = [
        "--forwarded-allow-ips"
        "127.0.0.1"
      ];
      description = "Extra command-line arguments for gunicorn.";
    };

    settings = lib.mkOption {
      type = lib.types.submodule {
        freeformType =
          with lib.types;
          attrsOf (
            nullOr (oneOf [
              bool
              int
              float
              str
              path
              (listOf anything)
              (attrsOf anything)
            ])
          );
        options = {
          BALSAM_DATABASE_URL = lib.mkOption {
            type = lib.types.nullOr lib.types.str;
            default = null;
            example = "postgresql://balsam@/balsam?host=/run/postgresql";
            description = ''
              libpq URL of the database. Set automatically by
              {option}`services.balsam.database.createLocally` and
              {option}`services.balsam.database.pgbouncer.enable`. A URL with
              a password belongs in {option}`services.balsam.database.urlFile`
              (or {option}`services.balsam.environmentFile`), not here (the
              Nix store is world-readable).
            '';
          };
          BALSAM_REDIS_PARAMS = lib.mkOption {
            type = lib.types.nullOr (lib.types.attrsOf lib.types.anything);
            default = null;
            example = {
              unix_socket_path = "/run/redis-balsam/redis.sock";
            };
            description = ''
              redis-py connection arguments (rendered as JSON); `null`
              disables Redis. Set automatically by
              {option}`services.balsam.redis.createLocally`.
            '';
          };
          BALSAM_LOG_LEVEL = lib.mkOption {
            type = lib.types.enum [
              "DEBUG"
              "INFO"
              "WARNING"
              "ERROR"
              "CRITICAL"
            ];
            default = "INFO";
            description = "Log level of the server.";
          };
          BALSAM_AUTH_ALLOW_REGISTRATION = lib.mkOption {
            type = lib.types.bool;
            default = false;
            description = ''
              Let anyone who reaches the server create a password account
              with `POST /auth/password/register`. Off, that route answers
              403 and accounts come from `balsam-manage server user add
              NAME` (or OAuth).
            '';
          };
          BALSAM_LOG_DIR = lib.mkOption {
            type = lib.types.nullOr lib.types.str;
            default = logsDir;
            description = ''
              Directory of the log files: gunicorn's `gunicorn-access.log`
              and `gunicorn-error.log`, and one `balsam-server-<pid>.log` per
              worker. The default is the unit's `LogsDirectory`, rotated by
              logrotate (`services.logrotate.settings.balsam`); `null` sends
              every log to the journal instead.
            '';
          };
        };
      };
      default = { };
      example = {
        BALSAM_AUTH_LOGIN_METHODS = [
          "password"
          "oauth_device"
        ];
        GUNICORN_TIMEOUT = 120;
      };
      description = ''
        Environment variables for the service (see the Balsam settings
        reference). Booleans become `true`/`false`, numbers decimal text,
        lists and attribute sets JSON; `null` leaves a variable unset.
        Secrets do not belong here: use
        {option}`services.balsam.secretFiles` or
        {option}`services.balsam.environmentFile`.
      '';
    };

    environmentFile = lib.mkOption {
      type = lib.types.nullOr lib.types.path;
      default = null;
      example = "/run/secrets/balsam.env";
      description = ''
        File in systemd `EnvironmentFile=` format with further variables,
        e.g. secrets. It is read by the server, the migration step and the
        backup job.
      '';
    };

    secretFiles = lib.mkOption {
      type = lib.types.attrsOf lib.types.str;
      default = { };
      example = {
        BALSAM_AUTH_SECRET_KEY = "/run/secrets/balsam-auth-secret-key";
        BALSAM_OAUTH_CLIENT_SECRET = "/run/secrets/balsam-oauth-client-secret";
      };
      description = ''
        Secret settings read from files, keyed by the environment variable
        they provide. Each file is passed with systemd `LoadCredential=` as
        credential `<lower-case name>` (e.g. `balsam_auth_secret_key`), which
        Balsam reads from `$CREDENTIALS_DIRECTORY`. The files stay outside
        the Nix store and need only be readable by root.
      '';
    };

    database.createLocally = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = ''
        Create a local PostgreSQL database `balsam` owned by the role
        `balsam`, reached with peer authentication over `/run/postgresql`.
        Off (an API-only host), the database is remote: give its URL with
        {option}`services.balsam.database.urlFile`, or reach it through a
        local PgBouncer ({option}`services.balsam.database.pgbouncer.enable`).
      '';
    };

    database.urlFile = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      example = "/run/secrets/balsam-database-url";
      description = ''
        File holding the database URL the server uses
        (`BALSAM_DATABASE_URL`), e.g.
        `postgresql://balsam:PASSWORD@db.example.org:5432/balsam?sslmode=verify-full`.
        Passed like {option}`services.balsam.secretFiles` (credential
        `balsam_database_url`), so it stays out of the Nix store and need
        only be readable by root. Not together with
        {option}`services.balsam.settings.BALSAM_DATABASE_URL` (which
        `createLocally` and `pgbouncer.enable` set), which would win over it.
      '';
    };

    database.directUrlFile = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      example = "/run/secrets/balsam-database-direct-url";
      description = ''
        File holding a URL straight to PostgreSQL, not through PgBouncer
        (`BALSAM_DATABASE_DIRECT_URL`, credential
        `balsam_database_direct_url`). Migrations (the unit's
        `ExecStartPre` and `balsam-manage server migrate`), backups,
        restores and prune use it when set; the server keeps
        `BALSAM_DATABASE_URL`. Required with
        {option}`services.balsam.database.pgbouncer.enable`.
      '';
    };

    database.pgbouncer = {
      enable = lib.mkEnableOption ''
        a local PgBouncer (`services.pgbouncer`) between the server and a
        remote PostgreSQL: transaction pooling, a unix socket in the
        PgBouncer runtime directory (`/run/pgbouncer`), peer authentication
        of the `balsam` user, `BALSAM_DATABASE_PGBOUNCER=true` for the
        server. Migrations, backups and prune bypass it
        ({option}`services.balsam.database.directUrlFile`)'';

      host = lib.mkOption {
        type = lib.types.nullOr lib.types.str;
        default = null;
        example = "db.example.org";
        description = "Host name or address of the remote PostgreSQL server that PgBouncer connects to.";
      };

      port = lib.mkOption {
        type = lib.types.port;
        default = 5432;
        description = "Port of the remote PostgreSQL server.";
      };

      database = lib.mkOption {
        type = lib.types.str;
        default = "balsam";
        description = "Database name on the remote PostgreSQL server (locally, PgBouncer offers it as `balsam`).";
      };

      user = lib.mkOption {
        type = lib.types.str;
        default = "balsam";
        description = ''
          Role PgBouncer logs in as on the remote server, for every client
          of this database. Its password comes from
          {option}`services.balsam.database.pgbouncer.authFile`.
        '';
      };

      poolSize = lib.mkOption {
        type = lib.types.ints.positive;
        default = 20;
        description = ''
          Server connections this host's PgBouncer keeps at most to the
          remote database (`pool_size` of its `[databases]` entry). Over all
          API hosts, the sum of their pool sizes plus the direct connections
          (migrations, backups, prune) must fit the server's
          `max_connections` less its reserved connections.
        '';
      };

      authFile = lib.mkOption {
        type = lib.types.nullOr lib.types.str;
        default = null;
        example = "/run/secrets/balsam-pgbouncer-auth";
        description = ''
          PgBouncer `auth_file`: one line `"ROLE" "PASSWORD"` for
          {option}`services.balsam.database.pgbouncer.user` (PgBouncer sends
          this password to the remote server), and the line `"balsam" ""` if
          that role has another name (PgBouncer looks the local client up
          there; it authenticates by peer credentials, the password is
          unused). Handed to `pgbouncer.service` with `LoadCredential=`, so
          the file need only be readable by root; after changing it, restart
          pgbouncer.service.
        '';
      };
    };

    redis.createLocally = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = ''
        Run a local Redis instance (`services.redis.servers.balsam`) on a
        unix socket only, and connect the service to it.
      '';
    };

    backup = {
      enable = lib.mkEnableOption "periodic database backups with `balsam server backup`";

      startAt = lib.mkOption {
        type = with lib.types; either str (listOf str);
        default = "*-*-* 02:15:00";
        example = "hourly";
        description = "When to run the backup, in {manpage}`systemd.time(7)` calendar syntax.";
      };

      directory = lib.mkOption {
        type = lib.types.str;
        default = "${stateDir}/backups";
        defaultText = lib.literalExpression ''"/var/lib/balsam/backups"'';
        description = "Directory for the dumps (PostgreSQL custom format). Created with mode 0700 for the `balsam` user.";
      };

      retention = {
        keep = lib.mkOption {
          type = lib.types.nullOr lib.types.ints.positive;
          default = 14;
          description = "Keep at most this many dumps (`--keep`); `null` for no count limit.";
        };
        maxAgeDays = lib.mkOption {
          type = lib.types.nullOr lib.types.ints.positive;
          default = null;
          example = 30;
          description = "Delete dumps older than this many days (`--max-age-days`); `null` for no age limit.";
        };
      };

      postgresqlPackage = lib.mkOption {
        type = lib.types.package;
        default = if config.services.postgresql.enable then config.services.postgresql.package else pkgs.postgresql_17;
        defaultText = lib.literalExpression "if config.services.postgresql.enable then config.services.postgresql.package else pkgs.postgresql_17";
        description = "PostgreSQL package whose `pg_dump` the backup uses; its major version must not be older than the server's.";
      };
    };

    metrics = {
      enable = lib.mkEnableOption ''
        Prometheus metrics at `/metrics` (`BALSAM_METRICS_ENABLED`), summed
        over the gunicorn workers; the workers' metric files live in the
        runtime directory'';

      tokenFile = lib.mkOption {
        type = lib.types.nullOr lib.types.str;
        default = null;
        example = "/run/secrets/balsam-metrics-token";
        description = ''
          File holding a bearer token that `/metrics` then requires
          (`BALSAM_METRICS_TOKEN`, passed as a credential like
          {option}`services.balsam.secretFiles`). Give Prometheus the same
          token (`authorization.credentials_file`). `null`: no token, so keep
          the port reachable by Prometheus only.
        '';
      };
    };

    prune = {
      enable = lib.mkEnableOption "periodic retention with `balsam server prune` (old job events, optionally old finished jobs)";

      startAt = lib.mkOption {
        type = with lib.types; either str (listOf str);
        default = "*-*-* 03:30:00";
        example = "weekly";
        description = "When to prune, in {manpage}`systemd.time(7)` calendar syntax.";
      };

      eventsOlderThanDays = lib.mkOption {
        type = lib.types.ints.positive;
        default = 90;
        description = "Delete job state events (`log_events`) older than this many days.";
      };

      jobsOlderThanDays = lib.mkOption {
        type = lib.types.nullOr lib.types.ints.positive;
        default = null;
        example = 180;
        description = ''
          Also delete jobs in {option}`services.balsam.prune.jobStates` whose
          last change is older than this many days, with their events and
          transfer items (a job that a child still awaits is kept). `null`:
          jobs are never deleted.
        '';
      };

      jobStates = lib.mkOption {
        type = lib.types.nonEmptyListOf (
          lib.types.enum [
            "JOB_FINISHED"
            "FAILED"
          ]
        );
        default = [ "JOB_FINISHED" ];
        description = "States of the jobs that {option}`services.balsam.prune.jobsOlderThanDays` deletes.";
      };
    };
  };

  config = lib.mkIf cfg.enable (
    lib.mkMerge [
      {
        assertions = [
          {
            assertion =
              cfg.settings.BALSAM_DATABASE_URL != null
              || cfg.environmentFile != null
              || cfg.secretFiles ? BALSAM_DATABASE_URL;
            message = "services.balsam: no database URL. Set database.createLocally, database.urlFile (a remote database), database.pgbouncer.enable, settings.BALSAM_DATABASE_URL, secretFiles.BALSAM_DATABASE_URL or an environmentFile that provides it.";
          }
          {
            # The environment wins over a credential in Balsam's settings.
            assertion = !(cfg.database.urlFile != null && cfg.settings.BALSAM_DATABASE_URL != null);
            message = "services.balsam.database.urlFile cannot be used together with settings.BALSAM_DATABASE_URL (which database.createLocally and database.pgbouncer.enable set): the environment variable would win over the file. With PgBouncer, the server's URL points at PgBouncer and the remote database's URL goes in database.directUrlFile.";
          }
          {
            assertion = !(cfg.database.createLocally && pgb.enable);
            message = "services.balsam.database.pgbouncer is for a remote PostgreSQL; with database.createLocally the service reaches the local one directly over /run/postgresql. Turn one of them off.";
          }
          {
            assertion = !pgb.enable || hasDirectUrl;
            message = "services.balsam.database.pgbouncer.enable needs database.directUrlFile (or secretFiles/settings BALSAM_DATABASE_DIRECT_URL), a URL straight to PostgreSQL: migrations, backups, restores and prune must not go through PgBouncer's transaction pooling, which does not keep session-level locks and settings.";
          }
          {
            assertion = !pgb.enable || pgb.host != null;
            message = "services.balsam.database.pgbouncer.host: set the host name or address of the remote PostgreSQL server.";
          }
          {
            assertion = !pgb.enable || (pgb.authFile != null && lib.hasPrefix "/" pgb.authFile);
            message = "services.balsam.database.pgbouncer.authFile: set an absolute path to PgBouncer's auth_file, with the line \"${pgb.user}\" \"PASSWORD\" for the remote role; got ${if pgb.authFile == null then "null" else pgb.authFile}.";
          }
          {
            assertion = !(cfg.openFirewall && cfg.unixSocket != null);
            message = "services.balsam: openFirewall has no effect when listening on unixSocket.";
          }
          {
            # ProtectSystem=strict: the runtime directory is the service's
            # only writable place for a socket (no ReadWritePaths for others,
            # whose directory would also have to exist and be writable).
            assertion = cfg.unixSocket == null || builtins.match "${runtimeDir}/[^/]+" cfg.unixSocket != null;
            message = "services.balsam.unixSocket must be a file directly in ${runtimeDir} (e.g. ${runtimeDir}/balsam.sock), the service's runtime directory; got ${toString cfg.unixSocket}.";
          }
          {
            # The same for the log files: LogsDirectory is writable, nothing else.
            assertion =
              cfg.settings.BALSAM_LOG_DIR == null
              || cfg.settings.BALSAM_LOG_DIR == logsDir
              || lib.hasPrefix "${logsDir}/" cfg.settings.BALSAM_LOG_DIR;
            message = "services.balsam.settings.BALSAM_LOG_DIR must be ${logsDir} (the unit's LogsDirectory), a directory below it, or null for the journal; got ${toString cfg.settings.BALSAM_LOG_DIR}.";
          }
          {
            assertion = lib.all balsamLib.isEnvName (lib.attrNames cfg.secretFiles);
            message = "services.balsam.secretFiles: keys must be environment variable names.";
          }
          {
            assertion = !(cfg.backup.enable && lib.hasPrefix "/run/" cfg.backup.directory);
            message = "services.balsam.backup.directory must be persistent storage, not under /run.";
          }
        ];

        users.users.${user} = {
          isSystemUser = true;
          inherit group;
          home = stateDir;
          description = "Balsam service";
        };
        users.groups.${group} = { };

        environment.systemPackages = [ manage ];

        networking.firewall.allowedTCPPorts = lib.mkIf (cfg.openFirewall && cfg.unixSocket == null) [ cfg.port ];

        # The log files (BALSAM_LOG_DIR), as nixpkgs' nginx module does its
        # own. copytruncate: gunicorn and the workers keep their files open.
        services.logrotate.settings.balsam = lib.mkIf (cfg.settings.BALSAM_LOG_DIR != null) (
          lib.mapAttrs (_: lib.mkDefault) {
            files = [ "${cfg.settings.BALSAM_LOG_DIR}/*.log" ];
            frequency = "daily";
            rotate = 14;
            compress = true;
            delaycompress = true;
            copytruncate = true;
            missingok = true;
            notifempty = true;
            su = "${user} ${group}";
          }
        );

        systemd.services.balsam = {
          description = "Balsam service (gunicorn)";
          wantedBy = [ "multi-user.target" ];
          wants = [ "network-online.target" ];
          after = [
            "network-online.target"
          ]
          ++ dbUnits
          ++ pgbouncerUnits
          ++ redisUnits;
          requires = dbUnits ++ pgbouncerUnits ++ redisUnits;

          inherit environment;

          serviceConfig = hardening // commonServiceConfig // {
            Type = "simple";
            # Alembic upgrade to head before every start; a failed migration
            # keeps the old code from serving a half-migrated database.
            ExecStartPre = balsamLib.systemdCommand [
              exe
              "server"
              "migrate"
            ];
            ExecStart = balsamLib.systemdCommand (
              [ (lib.getExe' cfg.package "balsam-gunicorn") ] ++ cfg.extraGunicornArgs
            );
            # gunicorn: HUP re-reads the configuration, starts new workers
            # and retires the old ones gracefully.
            ExecReload = "${pkgs.coreutils}/bin/kill -HUP $MAINPID";
            Restart = "on-failure";
            RestartSec = 5;
            TimeoutStartSec = "10min";
            RuntimeDirectory = baseNameOf runtimeDir;
            RuntimeDirectoryMode = "0755";
            # BALSAM_LOG_DIR (settings) points here by default.
            LogsDirectory = baseNameOf logsDir;
            # gunicorn chowns a unix socket it creates (to its own uid/gid).
            SystemCallFilter = hardening.SystemCallFilter ++ lib.optional (cfg.unixSocket != null) "@chown";
          };
        };
      }

      (lib.mkIf cfg.metrics.enable {
        services.balsam.settings.BALSAM_METRICS_ENABLED = true;
        services.balsam.secretFiles = lib.mkIf (cfg.metrics.tokenFile != null) {
          BALSAM_METRICS_TOKEN = cfg.metrics.tokenFile;
        };
      })

      (lib.mkIf cfg.database.createLocally {
        services.balsam.settings.BALSAM_DATABASE_URL = lib.mkDefault (
          balsamLib.localDatabaseUrl { inherit user; }
        );
        # No `package` here: services.postgresql chooses it by
        # system.stateVersion (with mkDefault, in a unique option), so an
        # existing host keeps the major version its data directory was made
        # with. Set services.postgresql.package to upgrade deliberately.
        services.postgresql = {
          enable = true;
          ensureDatabases = [ user ];
          ensureUsers = [
            {
              name = user;
              ensureDBOwnership = true;
            }
          ];
        };
      })

      {
        # Both go through the secretFiles mechanism (credentials
        # balsam_database_url, balsam_database_direct_url).
        services.balsam.secretFiles = lib.mkMerge [
          (lib.mkIf (cfg.database.urlFile != null) { BALSAM_DATABASE_URL = cfg.database.urlFile; })
          (lib.mkIf (cfg.database.directUrlFile != null) {
            BALSAM_DATABASE_DIRECT_URL = cfg.database.directUrlFile;
          })
        ];
      }

      (lib.mkIf pgb.enable {
        services.balsam.settings = {
          # Peer authentication over PgBouncer's socket: no password here.
          # (Not with createLocally, which sets its own: an assertion refuses
          # the pair with a clearer message than the conflict would give.)
          BALSAM_DATABASE_URL = lib.mkIf (!cfg.database.createLocally) (
            lib.mkDefault (
              balsamLib.localDatabaseUrl {
                inherit user;
                socketDir = pgbSettings.unix_socket_dir;
                # Declared (default 6432) in newer pgbouncer.nix, freeform in
                # the first settings-style one; nixpkgs reads it this way too.
                port = pgbSettings.listen_port or 6432;
              }
            )
          );
          # Transaction pooling: no server-side prepared statements and no
          # session state between transactions (docs/scaling.md).
          BALSAM_DATABASE_PGBOUNCER = true;
        };

        # Only options that nixpkgs' pgbouncer.nix declares (settings.pgbouncer
        # .pool_mode/.max_client_conn, settings.databases) or the freeform INI
        # keys of its `settings` (auth_*). listen_addr stays null: unix socket
        # only, in unix_socket_dir (nixpkgs: mkDefault /run/pgbouncer, the
        # unit's RuntimeDirectory).
        services.pgbouncer = {
          enable = true;
          settings = {
            databases.${user} = balsamLib.pgbouncerDatabase {
              inherit (pgb) host port user poolSize;
              dbname = pgb.database;
            };
            pgbouncer = {
              pool_mode = "transaction";
              auth_type = "hba";
              auth_hba_file = "${pgbouncerHbaFile}";
              auth_file = pgbouncerAuthPath;
              # Client connections are cheap: each worker holds up to
              # pool + overflow of them, and during a HUP reload the old and
              # the new workers are both connected (pgbouncer's default is 100).
              max_client_conn = lib.mkDefault 1000;
              # After a failed server login PgBouncer waits server_login_retry
              # (15 s by default) before it tries PostgreSQL again, refusing
              # clients meanwhile: a 1 s restart became 15 s of failed
              # requests in bench/bench_scaling.py (docs/scaling.md).
              server_login_retry = lib.mkDefault 1;
            };
          };
        };
        systemd.services.pgbouncer.serviceConfig.LoadCredential = lib.mkIf (pgb.authFile != null) [
          "${pgbouncerAuthCredential}:${pgb.authFile}"
        ];
      })

      (lib.mkIf cfg.redis.createLocally {
        services.balsam.settings.BALSAM_REDIS_PARAMS = lib.mkDefault (
          balsamLib.localRedisParams redisServer.unixSocket
        );
        services.redis.servers.balsam = {
          enable = true;
          # Unix socket only (0 is already the default for a named server).
          port = lib.mkDefault 0;
        };
      })

      (lib.mkIf cfg.backup.enable {
        systemd.tmpfiles.settings."10-balsam-backup".${cfg.backup.directory}.d = {
          inherit user group;
          mode = "0700";
        };

        systemd.services.balsam-backup = {
          description = "Balsam database backup (pg_dump)";
          after = dbUnits;
          requires = dbUnits;
          startAt = cfg.backup.startAt;
          path = [ cfg.backup.postgresqlPackage ];
          environment = environment // {
            BALSAM_BACKUP_DIR = cfg.backup.directory;
          };
          serviceConfig = hardening // commonServiceConfig // {
            Type = "oneshot";
            ExecStart = backupCommand;
            ReadWritePaths = [ cfg.backup.directory ];
            # A local database is reached over its unix socket, which works
            # without network access.
            PrivateNetwork = cfg.database.createLocally;
            Nice = 10;
            IOSchedulingClass = "idle";
          };
        };

        # Catch up on a run missed while the machine was off.
        systemd.timers.balsam-backup.timerConfig.Persistent = true;
      })

      (lib.mkIf cfg.prune.enable {
        # Short batches that skip rows the API holds: safe while it serves.
        systemd.services.balsam-prune = {
          description = "Balsam retention (balsam server prune)";
          after = dbUnits ++ [ "balsam.service" ];
          requires = dbUnits;
          startAt = cfg.prune.startAt;
          inherit environment;
          serviceConfig = hardening // commonServiceConfig // {
            Type = "oneshot";
            ExecStart = pruneCommand;
            PrivateNetwork = cfg.database.createLocally;
            Nice = 10;
            IOSchedulingClass = "idle";
          };
        };
        systemd.timers.balsam-prune.timerConfig.Persistent = true;
      })
    ]
  );
}
