# Python helpers shared by the VM tests' scripts (nix/vm-test.nix,
# nix/vm-test-pgbouncer.nix). `node` names the test driver's machine that
# runs curl and balsam-manage; `base` is the service's URL on that machine.
{ node, base }:
''
  import json

  base = "${base}"

  def curl_json(args):
      return json.loads(${node}.succeed(f"curl --fail --silent --show-error {args}"))

  def login_and_create_site(username, password, site_name):
      """An account from balsam-manage, a password login over the API, a new site; returns the auth header."""
      ${node}.succeed(f"echo {password} | balsam-manage server user add {username} --password-stdin")
      token = curl_json(
          f"-X POST --data-urlencode username={username} --data-urlencode password={password} "
          f"{base}/auth/password/login"
      )["access_token"]
      auth = f"-H 'Authorization: Bearer {token}'"
      site = curl_json(
          f"-X POST {auth} -H 'Content-Type: application/json' "
          f"-d '{{\"name\": \"{site_name}\", \"path\": \"/srv/balsam/{site_name}\"}}' "
          f"{base}/sites/"
      )
      assert site["name"] == site_name, site
      return auth
''
