# Python dependencies that nixpkgs 26.05 does not package, built by this
# flake: `ps` is a python3.pkgs set. nix/package.nix and nix/devshell.nix
# take a name from nixpkgs when it has one, else from here.
ps: {
  fastapi-offline = ps.callPackage ./fastapi-offline.nix { };
}
