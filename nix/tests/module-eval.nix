# ci: needs nixpkgs.lib (not run by .ci/nix-checks.sh)
#
# Evaluates nix/module.nix under lib.evalModules with nixpkgs' `lib` and
# stand-in declarations for the NixOS options the module sets or reads (not
# the real NixOS modules: those need all of nixpkgs). Use it to look at the
# generated units without a NixOS machine:
#
#   git clone https://github.com/nix-community/nixpkgs.lib /tmp/nixpkgs.lib
#   nix-instantiate --eval --strict --json nix/tests/module-eval.nix \
#     --arg nixpkgsLib /tmp/nixpkgs.lib/lib -A summary
#
# The attribute `checks` holds assertions on the result (evaluates to true or
# throws); `summary` is the units' Exec lines, environment and the timer.
{
  nixpkgsLib,
  config ? { },
  # Merged into the PgBouncer host (nix/tests/rehearse-pgbouncer.sh points it
  # at a throwaway PostgreSQL and socket directory).
  pgbouncerConfig ? { },
}:
let
  lib = import nixpkgsLib;
  inherit (lib) mkOption types;

  fakeDrv = name: extra: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
    outputs = [ "out" ];
    meta = { };
  } // extra;

  pkgs = {
    coreutils = fakeDrv "coreutils-9.8" { };
    systemd = fakeDrv "systemd-258" { };
    # Returns the script text, so the harness can look at it.
    writeShellScriptBin = name: text: fakeDrv name { inherit text; };
    writeText = name: text: fakeDrv name { inherit text; };
    pgbouncer = fakeDrv "pgbouncer-1.24.1" { meta.mainProgram = "pgbouncer"; };
    postgresql_13 = fakeDrv "postgresql-13.23" { psqlSchema = "13"; };
    postgresql_14 = fakeDrv "postgresql-14.20" { psqlSchema = "14"; };
    postgresql_15 = fakeDrv "postgresql-15.15" { psqlSchema = "15"; };
    postgresql_16 = fakeDrv "postgresql-16.11" { psqlSchema = "16"; };
    postgresql_17 = fakeDrv "postgresql-17.7" { psqlSchema = "17"; };
    callPackage = _: _: throw "stand-in pkgs.callPackage: set services.balsam.package explicitly";
  };

  balsamPackage = fakeDrv "balsam-service-0.1.0" { meta.mainProgram = "balsam"; };

  anyAttrs = types.attrsOf types.anything;

  # pkgs.formats.ini { } (pkgs/pkgs-lib/formats.nix): its type, and what its
  # `generate` writes (lib.generators.toINI { }).
  iniFormat = {
    type = types.attrsOf (types.attrsOf (types.nullOr (types.oneOf [ types.bool types.int types.float types.str ])));
    render = lib.generators.toINI { };
  };

  # nixos/modules/services/databases/redis.nix
  redisName = name: "redis" + lib.optionalString (name != "") ("-" + name);

  # Stand-ins, declared with the types and defaults nixpkgs uses where they
  # matter (see docs/nixos.md for the files and versions they follow).
  standIns =
    { config, ... }:
    {
      _file = "nix/tests/module-eval.nix (stand-ins for the NixOS modules)";
      options = {
        # nixos/modules/misc/version.nix: defaults to the release (26.05 at the pin).
        system.stateVersion = mkOption {
          type = types.str;
          default = "26.05";
        };
        assertions = mkOption {
          type = types.listOf types.unspecified;
          default = [ ];
        };
        warnings = mkOption {
          type = types.listOf types.str;
          default = [ ];
        };
        users.users = mkOption {
          type = types.attrsOf (types.submodule { freeformType = anyAttrs; });
          default = { };
        };
        users.groups = mkOption {
          type = types.attrsOf (types.submodule { freeformType = anyAttrs; });
          default = { };
        };
        environment.systemPackages = mkOption {
          type = types.listOf types.package;
          default = [ ];
        };
        systemd.package = mkOption {
          type = types.package;
          default = pkgs.systemd;
        };
        networking.firewall.allowedTCPPorts = mkOption {
          type = types.listOf types.port;
          default = [ ];
        };
        systemd.tmpfiles.settings = mkOption {
          type = types.attrsOf (types.attrsOf (types.attrsOf anyAttrs));
          default = { };
        };
        systemd.services = mkOption {
          default = { };
          type = types.attrsOf (
            types.submodule {
              options = {
                enable = mkOption {
                  type = types.bool;
                  default = true;
                };
                description = mkOption {
                  type = types.str;
                  default = "";
                };
                wantedBy = mkOption {
                  type = types.listOf types.str;
                  default = [ ];
                };
                wants = mkOption {
                  type = types.listOf types.str;
                  default = [ ];
                };
                after = mkOption {
                  type = types.listOf types.str;
                  default = [ ];
                };
                requires = mkOption {
                  type = types.listOf types.str;
                  default = [ ];
                };
                environment = mkOption {
                  type = types.attrsOf (types.nullOr (types.oneOf [ types.str types.path types.package ]));
                  default = { };
                };
                path = mkOption {
                  type = types.listOf (types.oneOf [ types.package types.str ]);
                  default = [ ];
                };
                serviceConfig = mkOption {
                  type = types.attrsOf types.unspecified;
                  default = { };
                };
                startAt = mkOption {
                  type = with types; either str (listOf str);
                  default = [ ];
                  apply = v: if builtins.isList v then v else [ v ];
                };
              };
            }
          );
        };
        systemd.timers = mkOption {
          default = { };
          type = types.attrsOf (
            types.submodule {
              options = {
                wantedBy = mkOption {
                  type = types.listOf types.str;
                  default = [ ];
                };
                timerConfig = mkOption {
                  type = types.attrsOf types.unspecified;
                  default = { };
                };
              };
            }
          );
        };
        services.postgresql = {
          enable = mkOption {
            type = types.bool;
            default = false;
          };
          # A unique `types.package` without a default: the module sets it
          # in its own config with mkDefault (below), as nixpkgs does.
          package = mkOption { type = types.package; };
          ensureDatabases = mkOption {
            type = types.listOf types.str;
            default = [ ];
          };
          ensureUsers = mkOption {
            default = [ ];
            type = types.listOf (
              types.submodule {
                options = {
                  name = mkOption { type = types.str; };
                  ensureDBOwnership = mkOption {
                    type = types.bool;
                    default = false;
                  };
                };
              }
            );
          };
        };
        # nixos/modules/services/logging/logrotate.nix
        services.logrotate.settings = mkOption {
          default = { };
          type = types.attrsOf (
            types.submodule (
              { name, ... }:
              {
                freeformType = types.attrsOf (
                  types.nullOr (
                    types.oneOf [
                      types.int
                      types.bool
                      types.str
                    ]
                  )
                );
                options.files = mkOption {
                  type = types.either types.str (types.listOf types.str);
                  default = name;
                };
              }
            )
          );
        };
        # nixos/modules/services/databases/pgbouncer.nix, the `settings` form
        # (the newest stored copy; see docs/nixos.md): a submodule with the
        # INI format as freeformType, and these declared options.
        services.pgbouncer = {
          enable = mkOption {
            type = types.bool;
            default = false;
          };
          package = mkOption {
            type = types.package;
            default = pkgs.pgbouncer;
          };
          openFirewall = mkOption {
            type = types.bool;
            default = false;
          };
          user = mkOption {
            type = types.str;
            default = "pgbouncer";
          };
          group = mkOption {
            type = types.str;
            default = "pgbouncer";
          };
          homeDir = mkOption {
            type = types.path;
            default = "/var/lib/pgbouncer";
          };
          openFilesLimit = mkOption {
            type = types.int;
            default = 65536;
          };
          settings = mkOption {
            default = { };
            type = types.submodule {
              freeformType = iniFormat.type;
              options = {
                databases = mkOption {
                  type = types.attrsOf types.str;
                  default = { };
                };
                users = mkOption {
                  type = types.attrsOf types.str;
                  default = { };
                };
                peers = mkOption {
                  type = types.attrsOf types.str;
                  default = { };
                };
                pgbouncer = {
                  listen_port = mkOption {
                    type = types.port;
                    default = 6432;
                  };
                  listen_addr = mkOption {
                    type = types.nullOr types.commas;
                    default = null;
                  };
                  pool_mode = mkOption {
                    type = types.enum [
                      "session"
                      "transaction"
                      "statement"
                    ];
                    default = "session";
                  };
                  max_client_conn = mkOption {
                    type = types.int;
                    default = 100;
                  };
                  default_pool_size = mkOption {
                    type = types.int;
                    default = 20;
                  };
                  max_db_connections = mkOption {
                    type = types.int;
                    default = 0;
                  };
                  max_user_connections = mkOption {
                    type = types.int;
                    default = 0;
                  };
                  ignore_startup_parameters = mkOption {
                    type = types.nullOr types.commas;
                    default = null;
                  };
                };
              };
            };
          };
        };
        services.redis.servers = mkOption {
          default = { };
          type = types.attrsOf (
            types.submodule (
              { name, config, ... }:
              {
                options = {
                  enable = mkOption {
                    type = types.bool;
                    default = false;
                  };
                  port = mkOption {
                    type = types.port;
                    default = if name == "" then 6379 else 0;
                  };
                  unixSocket = mkOption {
                    type = types.nullOr types.path;
                    default = "/run/${redisName name}/redis.sock";
                  };
                  user = mkOption {
                    type = types.str;
                    default = redisName name;
                  };
                  group = mkOption {
                    type = types.str;
                    default = config.user;
                  };
                };
              }
            )
          );
        };
      };

      # What nixos/modules/system/boot/systemd.nix does with startAt, and what
      # services.postgresql does when enabled: the package by stateVersion
      # with mkDefault, and the ensureDBOwnership assertion.
      config = {
        # What pgbouncer.nix does when enabled (its unit, reduced to what
        # the balsam module relies on).
        services.pgbouncer.settings.pgbouncer.unix_socket_dir = lib.mkIf config.services.pgbouncer.enable (
          lib.mkDefault "/run/pgbouncer"
        );
        systemd.services.pgbouncer = lib.mkIf config.services.pgbouncer.enable {
          description = "PgBouncer - PostgreSQL connection pooler";
          wantedBy = [ "multi-user.target" ];
          after = [ "network-online.target" ];
          serviceConfig = {
            Type = "notify-reload";
            User = config.services.pgbouncer.user;
            Group = config.services.pgbouncer.group;
            ExecStart = "${lib.getExe config.services.pgbouncer.package} /etc/pgbouncer/pgbouncer.ini";
            RuntimeDirectory = "pgbouncer";
            LimitNOFILE = config.services.pgbouncer.openFilesLimit;
          };
        };
        services.postgresql.package = lib.mkIf config.services.postgresql.enable (
          lib.mkDefault (
            if lib.versionAtLeast config.system.stateVersion "25.11" then
              pkgs.postgresql_17
            else if lib.versionAtLeast config.system.stateVersion "24.11" then
              pkgs.postgresql_16
            else if lib.versionAtLeast config.system.stateVersion "23.11" then
              pkgs.postgresql_15
            else if lib.versionAtLeast config.system.stateVersion "22.05" then
              pkgs.postgresql_14
            else
              pkgs.postgresql_13
          )
        );
        systemd.timers = lib.mapAttrs (_: service: {
          wantedBy = [ "timers.target" ];
          timerConfig.OnCalendar = service.startAt;
        }) (lib.filterAttrs (_: s: s.enable && s.startAt != [ ]) config.systemd.services);
        assertions = map (u: {
          assertion = u.ensureDBOwnership -> lib.elem u.name config.services.postgresql.ensureDatabases;
          message = "ensureDBOwnership for ${u.name} needs a database of that name";
        }) config.services.postgresql.ensureUsers;
      };
    };

  evalWith =
    extra:
    lib.evalModules {
      specialArgs = { inherit pkgs; };
      modules = [
        standIns
        ../module.nix
        host
        extra
      ];
    };

  host = {
    services.balsam = {
      enable = true;
      package = balsamPackage;
      database.createLocally = true;
      redis.createLocally = true;
      workers = 4;
      openFirewall = true;
      secretFiles.BALSAM_AUTH_SECRET_KEY = "/run/secrets/balsam-auth-secret-key";
      environmentFile = "/run/secrets/balsam.env";
      settings.BALSAM_AUTH_LOGIN_METHODS = [
        "password"
        "oauth_device"
      ];
      backup = {
        enable = true;
        retention.keep = 7;
        retention.maxAgeDays = 30;
      };
      metrics = {
        enable = true;
        tokenFile = "/run/secrets/balsam-metrics-token";
      };
      prune = {
        enable = true;
        jobsOlderThanDays = 180;
        jobStates = [
          "JOB_FINISHED"
          "FAILED"
        ];
      };
    };
  };

  # Hosts without the main host's local database and Redis.
  evalOnly =
    modules:
    (lib.evalModules {
      specialArgs = { inherit pkgs; };
      modules = [
        standIns
        ../module.nix
      ]
      ++ modules;
    }).config;

  # An API host of several: remote PostgreSQL and Redis, backups and prune on.
  apiHostBase = {
    services.balsam = {
      enable = true;
      package = balsamPackage;
      secretFiles.BALSAM_AUTH_SECRET_KEY = "/run/secrets/balsam-auth-secret-key";
      settings.BALSAM_REDIS_PARAMS = {
        host = "redis.example.org";
        port = 6379;
      };
      backup.enable = true;
      prune.enable = true;
    };
  };

  # API only: the remote database's URL from a secret file.
  apiOnly = evalOnly [
    apiHostBase
    { services.balsam.database.urlFile = "/run/secrets/balsam-database-url"; }
  ];

  # API only through a local PgBouncer; migrations, backups and prune direct.
  pgbouncerModule = {
    services.balsam.database = {
      directUrlFile = "/run/secrets/balsam-database-direct-url";
      pgbouncer = {
        enable = true;
        host = "db.example.org";
        port = 5433;
        database = "balsam_prod";
        poolSize = 15;
        authFile = "/run/secrets/balsam-pgbouncer-auth";
      };
    };
  };
  pgbouncerHost = evalOnly [
    apiHostBase
    pgbouncerModule
    pgbouncerConfig
  ];

  # Combinations the assertions refuse.
  refused = {
    noUrl = evalOnly [ apiHostBase ];
    urlFileAndCreateLocally = evalOnly [
      apiHostBase
      {
        services.balsam.database = {
          createLocally = true;
          urlFile = "/run/secrets/balsam-database-url";
        };
      }
    ];
    pgbouncerAndCreateLocally = evalOnly [
      apiHostBase
      pgbouncerModule
      { services.balsam.database.createLocally = true; }
    ];
    pgbouncerAndUrlFile = evalOnly [
      apiHostBase
      pgbouncerModule
      { services.balsam.database.urlFile = "/run/secrets/balsam-database-url"; }
    ];
    pgbouncerWithoutDirectUrl = evalOnly [
      apiHostBase
      pgbouncerModule
      { services.balsam.database.directUrlFile = lib.mkForce null; }
    ];
    pgbouncerWithoutHost = evalOnly [
      apiHostBase
      pgbouncerModule
      { services.balsam.database.pgbouncer.host = lib.mkForce null; }
    ];
    pgbouncerWithoutAuthFile = evalOnly [
      apiHostBase
      pgbouncerModule
      { services.balsam.database.pgbouncer.authFile = lib.mkForce null; }
    ];
  };

  # The generated pgbouncer.ini, as nixpkgs' pgbouncer.nix writes it (nulls
  # dropped, then pkgs.formats.ini).
  pgbouncerIni = iniFormat.render (
    lib.filterAttrsRecursive (_: v: v != null) pgbouncerHost.services.pgbouncer.settings
  );

  # The defaults: no metrics, no prune timer, registration closed.
  plain = (evalWith { services.balsam = { metrics.enable = lib.mkForce false; prune.enable = lib.mkForce false; }; }).config;

  cfg = (evalWith config).config;

  failedAssertionsOf = c: map (a: a.message) (lib.filter (a: !a.assertion) c.assertions);
  failedAssertions = failedAssertionsOf cfg;

  # A host installed with an older NixOS keeps the PostgreSQL major version
  # that services.postgresql chooses by stateVersion (and its data directory).
  olderHost = (evalWith { system.stateVersion = "24.11"; }).config;

  # unixSocket: only directly in the runtime directory (ProtectSystem=strict).
  socketIn =
    path:
    (evalWith {
      services.balsam = {
        unixSocket = path;
        openFirewall = lib.mkForce false;
      };
    }).config;
  socketOk = socketIn "/run/balsam/balsam.sock";
  socketElsewhere = socketIn "/run/nginx/balsam.sock";

  # Logging to the journal instead of files, or to a directory the unit
  # cannot write.
  journalOnly = (evalWith { services.balsam.settings.BALSAM_LOG_DIR = null; }).config;
  logsElsewhere = (evalWith { services.balsam.settings.BALSAM_LOG_DIR = "/srv/balsam-logs"; }).config;

  # How NixOS writes a unit's [Service] values: lists become repeated keys,
  # booleans yes/no.
  render =
    v:
    if builtins.isBool v then
      (if v then "yes" else "no")
    else if builtins.isList v then
      map render v
    else
      toString v;

  unit = name: s: {
    inherit (s) description after requires wantedBy;
    environment = s.environment;
    path = map toString s.path;
    service = lib.mapAttrs (_: render) s.serviceConfig;
  };

  units = lib.mapAttrs unit (lib.filterAttrs (_: s: s.enable) cfg.systemd.services);

  timers = lib.mapAttrs (_: t: {
    inherit (t) wantedBy;
    timer = lib.mapAttrs (_: render) t.timerConfig;
  }) cfg.systemd.timers;

  expect =
    what: ok:
    if ok then true else throw "module-eval: ${what}";

  # An invalid host: an assertion with this message prefix fails.
  refusedWith =
    prefix: c:
    let
      failed = failedAssertionsOf c;
    in
    expect "expected a failed assertion starting with '${prefix}', got: ${builtins.toJSON failed}" (
      lib.any (lib.hasPrefix prefix) failed
    );
in
{
  inherit units timers failedAssertions pgbouncerIni;

  # Each refused combination's failed assertions (to read them).
  refusedAssertions = lib.mapAttrs (_: failedAssertionsOf) refused;

  summary = {
    balsam = {
      inherit (units.balsam.service) ExecStartPre ExecStart ExecReload Restart;
      inherit (units.balsam) after requires;
      environment = units.balsam.environment;
      LoadCredential = units.balsam.service.LoadCredential;
      SupplementaryGroups = units.balsam.service.SupplementaryGroups;
    };
    balsam-backup = {
      inherit (units.balsam-backup.service) ExecStart;
      inherit (units.balsam-backup) path;
    };
    timer = timers.balsam-backup;
    balsam-prune = {
      inherit (units.balsam-prune.service) ExecStart;
      inherit (units.balsam-prune) after;
      timer = timers.balsam-prune;
    };
    postgresql = {
      inherit (cfg.services.postgresql) enable ensureDatabases ensureUsers;
      package = cfg.services.postgresql.package.name;
      packageOnA2411Host = olderHost.services.postgresql.package.name;
    };
    redis = cfg.services.redis.servers.balsam;
    firewall = cfg.networking.firewall.allowedTCPPorts;
    balsam-manage = (lib.findFirst (p: p.name == "balsam-manage") null cfg.environment.systemPackages).text;
    tmpfiles = cfg.systemd.tmpfiles.settings;
    users = cfg.users.users;
    logrotate = cfg.services.logrotate.settings;
    inherit failedAssertions;
    failedAssertionsWithASocketOutsideRunBalsam = failedAssertionsOf socketElsewhere;
    apiOnly = {
      balsam = {
        inherit (apiOnly.systemd.services.balsam) after requires;
        inherit (apiOnly.systemd.services.balsam.serviceConfig) ExecStartPre LoadCredential;
      };
      failedAssertions = failedAssertionsOf apiOnly;
    };
    pgbouncer = {
      balsam = {
        inherit (pgbouncerHost.systemd.services.balsam) after requires;
        inherit (pgbouncerHost.systemd.services.balsam.serviceConfig) ExecStartPre LoadCredential;
        environment = lib.filterAttrs (n: _: lib.hasPrefix "BALSAM_DATABASE" n) pgbouncerHost.systemd.services.balsam.environment;
      };
      balsam-backup.after = pgbouncerHost.systemd.services.balsam-backup.after;
      pgbouncerService = {
        inherit (pgbouncerHost.systemd.services.pgbouncer.serviceConfig) LoadCredential RuntimeDirectory User;
      };
      ini = pgbouncerIni;
      failedAssertions = failedAssertionsOf pgbouncerHost;
    };
  };

  checks =
    let
      b = units.balsam;
      bk = units.balsam-backup;
      env = b.environment;
    in
    lib.all (x: x) [
      (expect "no failed assertions: ${toString failedAssertions}" (failedAssertions == [ ]))
      (expect "ExecStartPre runs the migrations" (
        b.service.ExecStartPre == "${balsamPackage}/bin/balsam server migrate"
      ))
      (expect "ExecStart runs balsam-gunicorn" (b.service.ExecStart == "${balsamPackage}/bin/balsam-gunicorn"))
      (expect "ExecReload sends HUP" (b.service.ExecReload == "${pkgs.coreutils}/bin/kill -HUP $MAINPID"))
      (expect "Restart=on-failure" (b.service.Restart == "on-failure"))
      (expect "after/requires postgresql.target" (
        lib.elem "postgresql.target" b.after && lib.elem "postgresql.target" b.requires
      ))
      (expect "fixed user" (b.service.User == "balsam" && b.service.DynamicUser or null == null))
      (expect "bind" (env.BALSAM_BIND == "127.0.0.1:8000"))
      (expect "workers" (env.GUNICORN_WORKERS == "4"))
      (expect "peer-auth database URL" (
        env.BALSAM_DATABASE_URL == "postgresql://balsam@/balsam?host=/run/postgresql"
      ))
      (expect "redis params JSON" (
        env.BALSAM_REDIS_PARAMS == ''{"unix_socket_path":"/run/redis-balsam/redis.sock"}''
      ))
      (expect "login methods JSON" (env.BALSAM_AUTH_LOGIN_METHODS == ''["password","oauth_device"]''))
      (expect "LoadCredential" (
        lib.sort lib.lessThan b.service.LoadCredential == [
          "balsam_auth_secret_key:/run/secrets/balsam-auth-secret-key"
          "balsam_metrics_token:/run/secrets/balsam-metrics-token"
        ]
      ))
      (expect "metrics on, with the token as a credential" (env.BALSAM_METRICS_ENABLED == "true"))
      (expect "metrics off by default" (
        !(plain.systemd.services.balsam.environment ? BALSAM_METRICS_ENABLED)
        && plain.systemd.services.balsam.serviceConfig.LoadCredential == [
          "balsam_auth_secret_key:/run/secrets/balsam-auth-secret-key"
        ]
      ))
      (expect "registration closed by default" (env.BALSAM_AUTH_ALLOW_REGISTRATION == "false"))
      (expect "prune command" (
        units.balsam-prune.service.ExecStart
        == "${balsamPackage}/bin/balsam server prune --events-older-than 90 --jobs-older-than 180 --job-state JOB_FINISHED --job-state FAILED"
      ))
      (expect "prune runs as the service user with its environment, after the service" (
        units.balsam-prune.service.User == "balsam"
        && units.balsam-prune.environment.BALSAM_DATABASE_URL == env.BALSAM_DATABASE_URL
        && lib.elem "balsam.service" units.balsam-prune.after
        && units.balsam-prune.service.ProtectSystem == "strict"
      ))
      (expect "prune timer" (
        timers.balsam-prune.timer.OnCalendar == [ "*-*-* 03:30:00" ]
        && timers.balsam-prune.timer.Persistent == "yes"
      ))
      (expect "no prune timer by default" (!(plain.systemd.services ? balsam-prune) && !(plain.systemd.timers ? balsam-prune)))
      (expect "EnvironmentFile" (b.service.EnvironmentFile == [ "/run/secrets/balsam.env" ]))
      (expect "redis group" (b.service.SupplementaryGroups == [ "redis-balsam" ]))
      (expect "redis socket only" (cfg.services.redis.servers.balsam.port == 0))
      (expect "hardening" (
        b.service.ProtectSystem == "strict" && b.service.NoNewPrivileges == "yes" && b.service.PrivateTmp == "yes"
      ))
      (expect "postgresql ensure*" (
        cfg.services.postgresql.ensureDatabases == [ "balsam" ]
        && cfg.services.postgresql.ensureUsers == [
          {
            name = "balsam";
            ensureDBOwnership = true;
          }
        ]
      ))
      (expect "firewall" (cfg.networking.firewall.allowedTCPPorts == [ 8000 ]))
      (expect "backup command" (
        bk.service.ExecStart
        == "${balsamPackage}/bin/balsam server backup --dir /var/lib/balsam/backups --keep 7 --max-age-days 30"
      ))
      (expect "backup has pg_dump on PATH" (bk.path == [ "${pkgs.postgresql_17}" ]))
      (expect "backup timer" (
        timers.balsam-backup.timer.OnCalendar == [ "*-*-* 02:15:00" ]
        && timers.balsam-backup.timer.Persistent == "yes"
        && timers.balsam-backup.wantedBy == [ "timers.target" ]
      ))
      (expect "log files in the LogsDirectory, rotated" (
        env.BALSAM_LOG_DIR == "/var/log/balsam"
        && b.service.LogsDirectory == "balsam"
        && cfg.services.logrotate.settings.balsam.files == [ "/var/log/balsam/*.log" ]
        && cfg.services.logrotate.settings.balsam.su == "balsam balsam"
        && cfg.services.logrotate.settings.balsam.copytruncate
      ))
      (expect "BALSAM_LOG_DIR = null: journal only, no logrotate entry" (
        !(journalOnly.systemd.services.balsam.environment ? BALSAM_LOG_DIR)
        && !(journalOnly.services.logrotate.settings ? balsam)
      ))
      (expect "BALSAM_LOG_DIR outside /var/log/balsam is refused (not writable under ProtectSystem=strict)" (
        lib.any (lib.hasPrefix "services.balsam.settings.BALSAM_LOG_DIR must be /var/log/balsam") (
          failedAssertionsOf logsElsewhere
        )
        && failedAssertionsOf journalOnly == [ ]
      ))
      (expect "unixSocket in /run/balsam" (
        failedAssertionsOf socketOk == [ ]
        && socketOk.systemd.services.balsam.environment.BALSAM_BIND == "unix:/run/balsam/balsam.sock"
      ))
      (expect "unixSocket elsewhere is refused (not writable under ProtectSystem=strict)" (
        lib.any (lib.hasPrefix "services.balsam.unixSocket must be a file directly in /run/balsam") (
          failedAssertionsOf socketElsewhere
        )
      ))
      (expect "PostgreSQL by stateVersion (26.05 host: 17)" (
        cfg.services.postgresql.package == pkgs.postgresql_17
      ))
      # --- API-only host: remote database URL from a secret file ---------
      (expect "API-only host: no failed assertions: ${toString (failedAssertionsOf apiOnly)}" (
        failedAssertionsOf apiOnly == [ ]
      ))
      (expect "API-only host: the URL file is a credential of every unit, no URL in the environment" (
        lib.all (
          u:
          lib.elem "balsam_database_url:/run/secrets/balsam-database-url" u.serviceConfig.LoadCredential
          && !(u.environment ? BALSAM_DATABASE_URL)
        ) (with apiOnly.systemd.services; [ balsam balsam-backup balsam-prune ])
      ))
      (expect "API-only host: no local PostgreSQL or PgBouncer, nothing to wait for but the network" (
        !apiOnly.services.postgresql.enable
        && !apiOnly.services.pgbouncer.enable
        && apiOnly.systemd.services.balsam.requires == [ ]
        && apiOnly.systemd.services.balsam.after == [ "network-online.target" ]
        && !(apiOnly.systemd.services.balsam.environment ? BALSAM_DATABASE_PGBOUNCER)
      ))
      (expect "API-only host: backup and prune may use the network (remote database)" (
        apiOnly.systemd.services.balsam-backup.serviceConfig.PrivateNetwork == false
        && apiOnly.systemd.services.balsam-prune.serviceConfig.PrivateNetwork == false
      ))
      (expect "API-only host: balsam-manage carries the URL credential" (
        lib.hasInfix "--property=LoadCredential=balsam_database_url:/run/secrets/balsam-database-url" (
          lib.findFirst (p: p.name == "balsam-manage") null apiOnly.environment.systemPackages
        ).text
      ))

      # --- PgBouncer host --------------------------------------------------
      (expect "PgBouncer host: no failed assertions: ${toString (failedAssertionsOf pgbouncerHost)}" (
        failedAssertionsOf pgbouncerHost == [ ]
      ))
      (
        let
          b = pgbouncerHost.systemd.services.balsam;
        in
        expect "PgBouncer host: the server reaches PgBouncer's socket in transaction-pooling mode, after pgbouncer.service" (
          b.environment.BALSAM_DATABASE_URL == "postgresql://balsam@/balsam?host=/run/pgbouncer&port=6432"
          && b.environment.BALSAM_DATABASE_PGBOUNCER == "true"
          && lib.elem "pgbouncer.service" b.after
          && lib.elem "pgbouncer.service" b.requires
          && !(lib.elem "postgresql.target" b.after)
        )
      )
      (expect "PgBouncer host: the direct URL is a credential of the server (its ExecStartPre migrates), backup and prune" (
        lib.all (
          u: lib.elem "balsam_database_direct_url:/run/secrets/balsam-database-direct-url" u.serviceConfig.LoadCredential
        ) (with pgbouncerHost.systemd.services; [ balsam balsam-backup balsam-prune ])
        && pgbouncerHost.systemd.services.balsam.serviceConfig.ExecStartPre == "${balsamPackage}/bin/balsam server migrate"
      ))
      (expect "PgBouncer host: backup and prune do not wait for PgBouncer (they go direct)" (
        !(lib.elem "pgbouncer.service" pgbouncerHost.systemd.services.balsam-backup.after)
        && !(lib.elem "pgbouncer.service" pgbouncerHost.systemd.services.balsam-prune.requires)
      ))
      (
        let
          p = pgbouncerHost.services.pgbouncer;
        in
        expect "PgBouncer host: services.pgbouncer: transaction pooling, unix socket only, hba peer, the remote database" (
          p.enable
          && p.settings.pgbouncer.pool_mode == "transaction"
          && p.settings.pgbouncer.listen_addr == null
          && p.settings.pgbouncer.unix_socket_dir == "/run/pgbouncer"
          && p.settings.pgbouncer.listen_port == 6432
          && p.settings.pgbouncer.auth_type == "hba"
          && p.settings.pgbouncer.auth_hba_file == "/nix/store/00000000000000000000000000000000-balsam-pgbouncer-hba.conf"
          && p.settings.pgbouncer.auth_file == "/run/credentials/pgbouncer.service/balsam-pgbouncer-auth"
          && p.settings.pgbouncer.max_client_conn == 1000
          && p.settings.pgbouncer.server_login_retry == 1
          && p.settings.databases == {
            balsam = "host=db.example.org port=5433 dbname=balsam_prod user=balsam pool_size=15";
          }
        )
      )
      (expect "PgBouncer host: the auth file reaches pgbouncer.service as a credential" (
        pgbouncerHost.systemd.services.pgbouncer.serviceConfig.LoadCredential == [
          "balsam-pgbouncer-auth:/run/secrets/balsam-pgbouncer-auth"
        ]
      ))
      (expect "PgBouncer host: pgbouncer.ini has the [databases] entry and the pool mode" (
        lib.hasInfix "[databases]\nbalsam=host=db.example.org port=5433 dbname=balsam_prod user=balsam pool_size=15\n" pgbouncerIni
        && lib.hasInfix "pool_mode=transaction\n" pgbouncerIni
        && lib.hasInfix "server_login_retry=1\n" pgbouncerIni
        && !(lib.hasInfix "listen_addr" pgbouncerIni)
      ))
      (expect "PgBouncer host: max_client_conn stays overridable" (
        (evalOnly [
          apiHostBase
          pgbouncerModule
          { services.pgbouncer.settings.pgbouncer.max_client_conn = 300; }
        ]).services.pgbouncer.settings.pgbouncer.max_client_conn == 300
      ))

      # --- refused combinations -------------------------------------------
      (refusedWith "services.balsam: no database URL." refused.noUrl)
      (refusedWith "services.balsam.database.urlFile cannot be used together with settings.BALSAM_DATABASE_URL" refused.urlFileAndCreateLocally)
      (refusedWith "services.balsam.database.pgbouncer is for a remote PostgreSQL" refused.pgbouncerAndCreateLocally)
      (refusedWith "services.balsam.database.urlFile cannot be used together with settings.BALSAM_DATABASE_URL" refused.pgbouncerAndUrlFile)
      (refusedWith "services.balsam.database.pgbouncer.enable needs database.directUrlFile" refused.pgbouncerWithoutDirectUrl)
      (refusedWith "services.balsam.database.pgbouncer.host: set the host" refused.pgbouncerWithoutHost)
      (refusedWith "services.balsam.database.pgbouncer.authFile: set an absolute path" refused.pgbouncerWithoutAuthFile)
      (expect "each refused combination fails only the assertions meant for it" (
        lib.all (n: builtins.length (failedAssertionsOf refused.${n}) == 1) (lib.attrNames refused)
      ))

      (expect "PostgreSQL by stateVersion (24.11 host keeps 16, and pg_dump matches)" (
        olderHost.services.postgresql.package == pkgs.postgresql_16
        && olderHost.systemd.services.balsam-backup.path == [ pkgs.postgresql_16 ]
        && failedAssertionsOf olderHost == [ ]
      ))
    ];
}
