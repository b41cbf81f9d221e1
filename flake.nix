{
  description = "Balsam service: the central REST server of the Balsam HPC workflow system";

  # One input, pinned in flake.lock (nixos-26.05). No flake-utils: systems
  # come from nixpkgs.lib.genAttrs.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;

      # No x86_64-darwin: nixpkgs 26.05 deprecates it and warns on every
      # import for it (so `nix flake check` would warn).
      systems = [
        "x86_64-linux"
        "aarch64-linux"
        "aarch64-darwin"
      ];

      forAllSystems =
        f:
        lib.genAttrs systems (
          system:
          f (
            import nixpkgs {
              inherit system;
              overlays = [ self.overlays.default ];
            }
          )
        );
    in
    {
      overlays.default = final: _prev: {
        balsam-service = final.callPackage ./nix/package.nix { };
      };

      packages = forAllSystems (pkgs: {
        default = pkgs.balsam-service;
        inherit (pkgs) balsam-service;
      });

      devShells = forAllSystems (pkgs: {
        default = pkgs.callPackage ./nix/devshell.nix { };
      });

      apps = forAllSystems (
        pkgs:
        pkgs.callPackage ./nix/apps.nix {
          package = pkgs.balsam-service;
        }
      );

      # services.balsam; its package defaults to ./nix/package.nix built
      # with the host's nixpkgs.
      nixosModules.default = ./nix/module.nix;
      nixosModules.balsam = self.nixosModules.default;

      checks = forAllSystems (
        pkgs:
        lib.optionalAttrs pkgs.stdenv.hostPlatform.isLinux {
          # The pytest suite in the build sandbox (postgresqlTestHook and
          # redisTestHook provide PostgreSQL and Redis).
          pytest = pkgs.balsam-service.overridePythonAttrs (_: {
            doCheck = true;
          });
          # Needs KVM (or a very slow TCG fallback); see docs/nixos.md.
          vm = import ./nix/vm-test.nix {
            inherit pkgs;
            module = self.nixosModules.default;
          };
          # Two nodes: PostgreSQL on `db`, the API through a local PgBouncer on `api`.
          vm-pgbouncer = import ./nix/vm-test-pgbouncer.nix {
            inherit pkgs;
            module = self.nixosModules.default;
          };
        }
        // {
          package = pkgs.balsam-service;
          devShell = self.devShells.${pkgs.stdenv.hostPlatform.system}.default;
        }
      );

      # treefmt with nixfmt: a bare `nix fmt` formats every .nix file of the
      # tree (plain nixfmt formats the files it is given, and reads standard
      # input when given none).
      formatter = forAllSystems (pkgs: pkgs.nixfmt-tree);
    };
}
