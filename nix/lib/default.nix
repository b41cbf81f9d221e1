# Pure helpers for the Balsam flake and NixOS module.
#
# Only `builtins` is used here: no nixpkgs, no `lib`. That keeps this file
# evaluable by the Debian `nix-instantiate` in CI (which cannot evaluate
# nixpkgs) and lets nix/tests/lib.nix unit-test the logic the module relies on.
let
  inherit (builtins)
    attrNames
    concatStringsSep
    elem
    filter
    foldl'
    isAttrs
    isBool
    isFloat
    isInt
    isList
    isPath
    isString
    listToAttrs
    match
    replaceStrings
    stringLength
    substring
    throw
    toJSON
    ;

  upper = [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ];
  lower = [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];

  # Derivations are attribute sets with `type = "derivation"`; they render as
  # their store path, like `toString` does.
  isDerivation = v: isAttrs v && (v.type or null) == "derivation";
in
rec {
  toLower = replaceStrings upper lower;

  # A valid environment-variable name as the module accepts it.
  isEnvName = name: isString name && match "[A-Za-z_][A-Za-z0-9_]*" name != null;

  # One setting value -> the string put in the unit's environment.
  #  - strings, paths and derivations: as they are (`toString`);
  #  - booleans: "true" / "false" (pydantic-settings reads both);
  #  - integers and floats: decimal text;
  #  - lists and attribute sets: JSON, which is what the Balsam settings
  #    expect for list/dict fields (BALSAM_AUTH_LOGIN_METHODS,
  #    BALSAM_REDIS_PARAMS).
  # `null` never reaches this function: settingsToEnv drops it.
  envValue =
    v:
    if isBool v then
      (if v then "true" else "false")
    else if isInt v || isFloat v then
      toString v
    else if isString v || isPath v || isDerivation v then
      toString v
    else if isList v || isAttrs v then
      toJSON v
    else
      throw "balsam: cannot render setting value of type ${builtins.typeOf v} as an environment variable";

  # Freeform settings -> environment attribute set. `null` means "unset" and
  # is dropped, so a default can be switched off with `null`.
  settingsToEnv =
    settings:
    let
      names = filter (n: settings.${n} != null) (attrNames settings);
      bad = filter (n: !isEnvName n) names;
    in
    if bad != [ ] then
      throw "balsam: settings names must be environment variable names, got: ${concatStringsSep ", " bad}"
    else
      listToAttrs (map (n: { name = n; value = envValue settings.${n}; }) names);

  # gunicorn's --bind value (what the module puts in BALSAM_BIND).
  # A unix socket wins over address/port. IPv6 literals get brackets.
  bindString =
    {
      listenAddress ? "127.0.0.1",
      port ? 8000,
      unixSocket ? null,
    }:
    if unixSocket != null then
      (if substring 0 1 unixSocket == "/" then "unix:${unixSocket}" else throw "balsam: unixSocket must be an absolute path, got ${unixSocket}")
    else if port < 1 || port > 65535 then
      throw "balsam: port must be in 1..65535, got ${toString port}"
    else if match ".*:.*" listenAddress != null && substring 0 1 listenAddress != "[" then
      "[${listenAddress}]:${toString port}"
    else
      "${listenAddress}:${toString port}";

  # libpq URL for peer authentication over a local unix socket directory
  # (PostgreSQL's /run/postgresql, or a local PgBouncer's /run/pgbouncer with
  # its port, which names the socket file `.s.PGSQL.<port>`).
  localDatabaseUrl =
    {
      user,
      database ? user,
      socketDir ? "/run/postgresql",
      port ? null,
    }:
    "postgresql://${user}@/${database}?host=${socketDir}"
    + (if port == null then "" else "&port=${toString port}");

  # One value of a PgBouncer `key=value` connection string or HBA line. Only
  # plain words are accepted: PgBouncer's quoting rules differ from libpq's,
  # and no host name, port, database or role name needs more.
  pgbouncerWord =
    what: v:
    let
      s = toString v;
    in
    if match "[A-Za-z0-9_.:@+-]+" s != null then
      s
    else
      throw "balsam: PgBouncer ${what} must be a plain word (letters, digits, _ . : @ + -), got '${s}'";

  # The [databases] entry of a local PgBouncer for a remote PostgreSQL: the
  # server connection logs in as `user` (its password comes from PgBouncer's
  # auth_file), with at most `poolSize` server connections for this entry.
  pgbouncerDatabase =
    {
      host,
      port ? 5432,
      dbname,
      user,
      poolSize ? null,
    }:
    if port < 1 || port > 65535 then
      throw "balsam: PgBouncer port must be in 1..65535, got ${toString port}"
    else if poolSize != null && poolSize < 1 then
      throw "balsam: PgBouncer pool size must be positive, got ${toString poolSize}"
    else
      concatStringsSep " " (
        [
          "host=${pgbouncerWord "host" host}"
          "port=${toString port}"
          "dbname=${pgbouncerWord "database" dbname}"
          "user=${pgbouncerWord "user" user}"
        ]
        ++ (if poolSize == null then [ ] else [ "pool_size=${toString poolSize}" ])
      );

  # PgBouncer HBA file (auth_type = hba): the local `user` may reach
  # `database` over the unix socket, authenticated by the socket's peer
  # credentials (no password); every other connection is refused.
  pgbouncerHba =
    { database, user }:
    "local ${pgbouncerWord "database" database} ${pgbouncerWord "user" user} peer\n";

  # redis-py keyword arguments for a unix-socket connection.
  localRedisParams = socket: { unix_socket_path = socket; };

  # systemd credential name the Balsam settings look up in
  # $CREDENTIALS_DIRECTORY for an environment variable: its lower-case form.
  credentialName =
    envName:
    if isEnvName envName then toLower envName else throw "balsam: not an environment variable name: ${toString envName}";

  # { BALSAM_AUTH_SECRET_KEY = "/run/secrets/key"; } ->
  # [ "balsam_auth_secret_key:/run/secrets/key" ]  (LoadCredential= entries)
  loadCredentials =
    secretFiles:
    map (
      n:
      let
        path = toString secretFiles.${n};
      in
      if substring 0 1 path != "/" then
        throw "balsam: secret file for ${n} must be an absolute path, got ${path}"
      else
        "${credentialName n}:${path}"
    ) (filter (n: secretFiles.${n} != null) (attrNames secretFiles));

  # Arguments after `balsam server backup`.
  backupArgs =
    {
      directory,
      keep ? null,
      maxAgeDays ? null,
    }:
    [
      "--dir"
      directory
    ]
    ++ (if keep == null then [ ] else [ "--keep" (toString keep) ])
    ++ (if maxAgeDays == null then [ ] else [ "--max-age-days" (toString maxAgeDays) ]);

  # Arguments after `balsam server prune`: events older than N days always;
  # jobs (in `jobStates`) only when `jobsOlderThanDays` is set.
  pruneArgs =
    {
      eventsOlderThanDays,
      jobsOlderThanDays ? null,
      jobStates ? [ "JOB_FINISHED" ],
    }:
    [
      "--events-older-than"
      (toString eventsOlderThanDays)
    ]
    ++ (
      if jobsOlderThanDays == null then
        [ ]
      else
        [
          "--jobs-older-than"
          (toString jobsOlderThanDays)
        ]
        ++ builtins.concatMap (state: [
          "--job-state"
          state
        ]) jobStates
    );

  # Quote one argument for a systemd Exec*= line. Plain words stay bare;
  # anything else is double-quoted with `\`, `"` and `$` escaped (systemd
  # expands `$VAR` in Exec lines, which must not happen to our values) and
  # `%` doubled (systemd specifiers).
  systemdArg =
    arg:
    let
      s = toString arg;
    in
    if match "[A-Za-z0-9_./:=@+,-]+" s != null then
      s
    else
      "\"" + replaceStrings [ "\\" "\"" "$" "%" ] [ "\\\\" "\\\"" "$$" "%%" ] s + "\"";

  systemdCommand = args: concatStringsSep " " (map systemdArg args);

  # Keep only the names in `names` that are not in `drop`, preserving order
  # and removing duplicates (used for dependency lists).
  uniqueWithout =
    drop: names: foldl' (acc: n: if elem n acc || elem n drop then acc else acc ++ [ n ]) [ ] names;

  # True when `s` has the form of a systemd calendar spec we accept as-is
  # (non-empty, no newline); systemd itself validates the details.
  isCalendarSpec = s: isString s && stringLength s > 0 && match ".*\n.*" s == null;
}
