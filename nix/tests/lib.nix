# Unit tests for nix/lib (no nixpkgs needed):
#   nix-instantiate --eval --strict nix/tests/lib.nix
# Evaluates to the list of passed test names; a failing case throws.
let
  l = import ../lib;

  eq =
    name: actual: expected:
    if actual == expected then
      name
    else
      throw "FAIL ${name}: expected ${builtins.toJSON expected}, got ${builtins.toJSON actual}";

  fails =
    name: expr:
    if (builtins.tryEval (builtins.deepSeq expr expr)).success then
      throw "FAIL ${name}: expected evaluation to fail"
    else
      name;

  fakeDrv = {
    type = "derivation";
    outPath = "/nix/store/00000000000000000000000000000000-fake";
  };
in
[
  # --- settings -> environment -------------------------------------------
  (eq "env: scalar rendering"
    (l.settingsToEnv {
      S = "text";
      T = true;
      F = false;
      I = 42;
      N = -3;
    })
    {
      S = "text";
      T = "true";
      F = "false";
      I = "42";
      N = "-3";
    }
  )
  (eq "env: float" (l.envValue 1.5) "1.500000")
  (eq "env: null drops the variable" (l.settingsToEnv {
    A = null;
    B = "b";
  }) { B = "b"; })
  (eq "env: list is JSON" (l.settingsToEnv {
    BALSAM_AUTH_LOGIN_METHODS = [
      "password"
      "oauth_device"
    ];
  }) { BALSAM_AUTH_LOGIN_METHODS = ''["password","oauth_device"]''; })
  (eq "env: attrs are JSON" (l.settingsToEnv {
    BALSAM_REDIS_PARAMS = l.localRedisParams "/run/redis-balsam/redis.sock";
  }) { BALSAM_REDIS_PARAMS = ''{"unix_socket_path":"/run/redis-balsam/redis.sock"}''; })
  (eq "env: nested JSON keeps types" (l.envValue {
    a = 1;
    b = [ true ];
    c = null;
  }) ''{"a":1,"b":[true],"c":null}'')
  (eq "env: derivation renders as its path" (l.envValue fakeDrv) fakeDrv.outPath)
  (eq "env: empty settings" (l.settingsToEnv { }) { })
  (fails "env: bad variable name" (l.settingsToEnv { "BAD-NAME" = "x"; }))
  (fails "env: function value" (l.envValue (x: x)))

  # --- gunicorn bind -----------------------------------------------------
  (eq "bind: defaults" (l.bindString { }) "127.0.0.1:8000")
  (eq "bind: address and port" (l.bindString {
    listenAddress = "0.0.0.0";
    port = 9000;
  }) "0.0.0.0:9000")
  (eq "bind: IPv6 gets brackets" (l.bindString {
    listenAddress = "::1";
    port = 8000;
  }) "[::1]:8000")
  (eq "bind: bracketed IPv6 kept" (l.bindString {
    listenAddress = "[::]";
    port = 8000;
  }) "[::]:8000")
  (eq "bind: unix socket wins" (l.bindString {
    listenAddress = "0.0.0.0";
    port = 9000;
    unixSocket = "/run/balsam/balsam.sock";
  }) "unix:/run/balsam/balsam.sock")
  (fails "bind: relative socket" (l.bindString { unixSocket = "balsam.sock"; }))
  (fails "bind: port 0" (l.bindString { port = 0; }))
  (fails "bind: port too large" (l.bindString { port = 70000; }))

  # --- database / redis --------------------------------------------------
  (eq "db: peer-auth URL" (l.localDatabaseUrl { user = "balsam"; }) "postgresql://balsam@/balsam?host=/run/postgresql")
  (eq "db: other socket dir" (l.localDatabaseUrl {
    user = "u";
    database = "d";
    socketDir = "/tmp/pg";
  }) "postgresql://u@/d?host=/tmp/pg")
  (eq "db: local PgBouncer socket and port" (l.localDatabaseUrl {
    user = "balsam";
    socketDir = "/run/pgbouncer";
    port = 6432;
  }) "postgresql://balsam@/balsam?host=/run/pgbouncer&port=6432")

  # --- PgBouncer -----------------------------------------------------------
  (eq "pgbouncer: database entry"
    (l.pgbouncerDatabase {
      host = "db.example.org";
      port = 5433;
      dbname = "balsam_prod";
      user = "balsam";
      poolSize = 25;
    })
    "host=db.example.org port=5433 dbname=balsam_prod user=balsam pool_size=25"
  )
  (eq "pgbouncer: default port, no pool size" (l.pgbouncerDatabase {
    host = "10.0.0.5";
    dbname = "balsam";
    user = "balsam";
  }) "host=10.0.0.5 port=5432 dbname=balsam user=balsam")
  (eq "pgbouncer: IPv6 host" (l.pgbouncerDatabase {
    host = "fd00::5";
    dbname = "balsam";
    user = "balsam";
  }) "host=fd00::5 port=5432 dbname=balsam user=balsam")
  (fails "pgbouncer: host with a space" (l.pgbouncerDatabase {
    host = "db host";
    dbname = "balsam";
    user = "balsam";
  }))
  (fails "pgbouncer: user with a quote" (l.pgbouncerDatabase {
    host = "db";
    dbname = "balsam";
    user = "bal'sam";
  }))
  (fails "pgbouncer: database with a parameter smuggled in" (l.pgbouncerDatabase {
    host = "db";
    dbname = "balsam password=x";
    user = "balsam";
  }))
  (fails "pgbouncer: port 0" (l.pgbouncerDatabase {
    host = "db";
    port = 0;
    dbname = "balsam";
    user = "balsam";
  }))
  (fails "pgbouncer: pool size 0" (l.pgbouncerDatabase {
    host = "db";
    dbname = "balsam";
    user = "balsam";
    poolSize = 0;
  }))
  (eq "pgbouncer: hba peer line" (l.pgbouncerHba {
    database = "balsam";
    user = "balsam";
  }) "local balsam balsam peer\n")
  (fails "pgbouncer: hba user with a space" (l.pgbouncerHba {
    database = "balsam";
    user = "bal sam";
  }))

  # --- credentials -------------------------------------------------------
  (eq "cred: lower-case name" (l.credentialName "BALSAM_AUTH_SECRET_KEY") "balsam_auth_secret_key")
  (eq "cred: LoadCredential entries"
    (l.loadCredentials {
      BALSAM_AUTH_SECRET_KEY = "/run/secrets/key";
      BALSAM_OAUTH_CLIENT_SECRET = "/run/secrets/oauth";
      BALSAM_DATABASE_URL = null;
    })
    [
      "balsam_auth_secret_key:/run/secrets/key"
      "balsam_oauth_client_secret:/run/secrets/oauth"
    ]
  )
  (eq "cred: none" (l.loadCredentials { }) [ ])
  (fails "cred: relative path" (l.loadCredentials { BALSAM_AUTH_SECRET_KEY = "key"; }))
  (fails "cred: bad name" (l.credentialName "balsam-key"))

  # --- backup ------------------------------------------------------------
  (eq "backup: directory only" (l.backupArgs { directory = "/var/lib/balsam/backups"; }) [
    "--dir"
    "/var/lib/balsam/backups"
  ])
  (eq "backup: retention"
    (l.backupArgs {
      directory = "/b";
      keep = 7;
      maxAgeDays = 30;
    })
    [
      "--dir"
      "/b"
      "--keep"
      "7"
      "--max-age-days"
      "30"
    ]
  )

  # --- prune arguments -----------------------------------------------------
  (eq "prune: events only" (l.pruneArgs { eventsOlderThanDays = 90; }) [
    "--events-older-than"
    "90"
  ])
  (eq "prune: events and jobs"
    (l.pruneArgs {
      eventsOlderThanDays = 30;
      jobsOlderThanDays = 180;
      jobStates = [
        "JOB_FINISHED"
        "FAILED"
      ];
    })
    [
      "--events-older-than"
      "30"
      "--jobs-older-than"
      "180"
      "--job-state"
      "JOB_FINISHED"
      "--job-state"
      "FAILED"
    ]
  )

  # --- systemd command lines -----------------------------------------------
  (eq "exec: plain words" (l.systemdCommand [
    "/nix/store/x-balsam/bin/balsam"
    "server"
    "migrate"
  ]) "/nix/store/x-balsam/bin/balsam server migrate")
  (eq "exec: quoting" (l.systemdCommand [
    "a b"
    "$HOME"
    "50%"
    ''say "hi"''
  ]) ''"a b" "$$HOME" "50%%" "say \"hi\""'')

  # --- misc ----------------------------------------------------------------
  (eq "toLower" (l.toLower "ABC_def_123") "abc_def_123")
  (eq "isEnvName" (map l.isEnvName [
    "A_1"
    "_x"
    "1A"
    "A-B"
    ""
  ]) [ true true false false false ])
  (eq "uniqueWithout" (l.uniqueWithout [ "b" ] [
    "a"
    "b"
    "a"
    "c"
  ]) [ "a" "c" ])
  (eq "isCalendarSpec" (map l.isCalendarSpec [
    "daily"
    "*-*-* 02:15:00"
    ""
    "a\nb"
  ]) [ true true false false ])
]
