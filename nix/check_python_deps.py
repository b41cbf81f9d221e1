#!/usr/bin/env python3
"""Check that the Nix package's Python dependencies match pyproject.toml.

nix/package.nix takes its dependency lists from nix/python-deps.nix (nixpkgs
attribute names). This script evaluates that file with `nix-instantiate`
(it needs no nixpkgs) and compares it with pyproject.toml:

* every [project].dependencies entry, mapped PyPI -> nixpkgs through
  `pypiToNix` (e.g. psycopg2-binary -> psycopg2), is in `runtime`, and
  `runtime` has nothing else;
* every `removeDeps` / `relaxDeps` name is a real pyproject dependency, and
  every removed name has a nixpkgs replacement in `pypiToNix`;
* optional-dependency groups are either listed in `excludedExtras` (not built
  in Nix, e.g. `local`) or covered by the runtime/check/dev lists;
* [build-system].requires is covered by `build` (or `ignoredBuildRequires`);
* nix/package.nix really reads these lists.

Standard library only (tomllib: Python >= 3.11). Prints PASS/FAIL lines and
exits 1 if anything failed.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

NAME_RE = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")


def normalize(name: str) -> str:
    """PEP 503 normalisation: lower case, runs of -_. become one '-'."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> str:
    match = NAME_RE.match(spec)
    if not match:
        raise ValueError(f"cannot parse requirement {spec!r}")
    return normalize(match.group(1))


class Report:
    def __init__(self) -> None:
        self.failed = 0

    def check(self, ok: bool, what: str, detail: str = "") -> None:
        if ok:
            print(f"PASS {what}")
        else:
            self.failed += 1
            print(f"FAIL {what}" + (f": {detail}" if detail else ""))


def load_nix_deps(path: Path) -> dict:
    exe = shutil.which("nix-instantiate")
    if exe is None:
        raise SystemExit("FAIL nix-instantiate not found (install nix-bin)")
    out = subprocess.run(
        [exe, "--store", "dummy://", "--readonly-mode", "--eval", "--strict", "--json", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> int:
    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyproject", type=Path, default=root / "pyproject.toml")
    parser.add_argument("--deps", type=Path, default=root / "nix" / "python-deps.nix")
    parser.add_argument("--package", type=Path, default=root / "nix" / "package.nix")
    args = parser.parse_args(argv)

    report = Report()
    with args.pyproject.open("rb") as fh:
        pyproject = tomllib.load(fh)
    deps = load_nix_deps(args.deps)

    pypi_to_nix = {normalize(k): v for k, v in deps.get("pypiToNix", {}).items()}
    runtime = list(deps["runtime"])
    check = list(deps.get("check", []))
    dev = list(deps.get("devPython", []))
    build = list(deps.get("build", []))
    ignored_build = {normalize(n) for n in deps.get("ignoredBuildRequires", [])}
    excluded_extras = list(deps.get("excludedExtras", []))

    def to_nix(pypi: str) -> str:
        return pypi_to_nix.get(pypi, pypi)

    project = pyproject.get("project", {})
    py_runtime = [requirement_name(s) for s in project.get("dependencies", [])]

    # 1. runtime dependencies
    wanted = {to_nix(n) for n in py_runtime}
    have = set(runtime)
    missing = sorted(wanted - have)
    extra = sorted(have - wanted)
    report.check(not missing, "every pyproject dependency is in the Nix runtime list", f"missing {missing}")
    report.check(not extra, "the Nix runtime list has no dependency pyproject lacks", f"extra {extra}")
    dupes = sorted({n for n in runtime if runtime.count(n) > 1})
    report.check(not dupes, "no duplicate Nix runtime names", f"duplicates {dupes}")
    not_attr = sorted(n for n in runtime + check + dev + build if n != normalize(n))
    report.check(not not_attr, "Nix names are normalised attribute names", f"{not_attr}")

    # 2. name mappings (e.g. psycopg2-binary -> psycopg2)
    for pypi, nix in sorted(pypi_to_nix.items()):
        report.check(
            pypi in py_runtime
            or any(pypi in [requirement_name(s) for s in g] for g in project.get("optional-dependencies", {}).values()),
            f"mapping {pypi} -> {nix} refers to a pyproject dependency",
            f"{pypi} is not in pyproject.toml (stale mapping)",
        )
    for name in deps.get("removeDeps", []):
        n = normalize(name)
        report.check(n in py_runtime, f"pythonRemoveDeps {name} is a pyproject dependency", "stale entry")
        report.check(
            n in pypi_to_nix and pypi_to_nix[n] in have,
            f"pythonRemoveDeps {name} is replaced by a nixpkgs package",
            f"add a pypiToNix entry for {name} whose target is in runtime",
        )
    for name in deps.get("relaxDeps", []):
        report.check(normalize(name) in py_runtime, f"pythonRelaxDeps {name} is a pyproject dependency", "stale entry")
    # A name that differs between PyPI and nixpkgs must be removed from the
    # wheel metadata, or nixpkgs' runtime-deps check fails on it.
    for pypi in py_runtime:
        if to_nix(pypi) != pypi:
            report.check(
                pypi in {normalize(n) for n in deps.get("removeDeps", [])},
                f"{pypi} (packaged as {to_nix(pypi)}) is in pythonRemoveDeps",
                "nixpkgs' runtime dependency check would not find it",
            )

    # 3. optional dependency groups
    extras = project.get("optional-dependencies", {})
    for name in excluded_extras:
        report.check(name in extras, f"excluded extra '{name}' exists in pyproject", "stale excludedExtras entry")
    covered = have | set(check) | set(dev)
    for group, specs in sorted(extras.items()):
        if group in excluded_extras:
            print(f"SKIP extra '{group}' (not built in Nix)")
            continue
        names = {to_nix(requirement_name(s)) for s in specs}
        lacking = sorted(names - covered)
        report.check(not lacking, f"extra '{group}' is covered by the Nix lists", f"missing {lacking}")

    # 4. build system
    build_req = [requirement_name(s) for s in pyproject.get("build-system", {}).get("requires", [])]
    lacking = sorted({to_nix(n) for n in build_req if n not in ignored_build} - set(build))
    report.check(not lacking, "build-system requirements are in the Nix build list", f"missing {lacking}")

    # 5. package.nix uses the lists (and does not hard-code others)
    text = args.package.read_text()
    for needle in (
        "import ./python-deps.nix",
        "dependencies = pick deps.runtime",
        "build-system = pick deps.build",
        "pythonRemoveDeps = deps.removeDeps",
    ):
        report.check(needle in text, f"nix/package.nix contains `{needle}`")

    print(f"{'FAIL' if report.failed else 'PASS'} python dependency check ({report.failed} failure(s))")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
