"""`python -m tools.differential`: run every sequence against upstream and ours, print the summary, write
the JSON report. Exit status 1 when a (b) difference (a bug on our side) remains, else 0."""

from __future__ import annotations

import argparse
import contextlib
import secrets
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tools.differential.compare import OUR_BUG
from tools.differential.ours import started_server
from tools.differential.report import Result, compare, route_coverage, summary, to_json
from tools.differential.runner import Target
from tools.differential.sequences import all_steps


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.differential",
        description="Send the same request sequences to upstream Balsam and to this server; report every "
        "request whose status class differs, classified (see tools/differential/README.md).",
    )
    parser.add_argument(
        "--upstream", required=True, help="base URL of the upstream server, e.g. http://127.0.0.1:58200"
    )
    ours = parser.add_mutually_exclusive_group(required=True)
    ours.add_argument("--ours", help="base URL of a running server of ours")
    ours.add_argument("--start-ours", action="store_true", help="start `balsam server dev` on a throwaway data dir")
    parser.add_argument("--ours-port", type=int, default=None, help="port for --start-ours (default: a free one)")
    parser.add_argument("--ours-data-dir", type=Path, default=None, help="data dir for --start-ours (default: temp)")
    parser.add_argument(
        "--ours-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help='environment for --start-ours, e.g. BALSAM_AUTH_LOGIN_METHODS=\'["password","oauth_device"]\'',
    )
    parser.add_argument("--json", type=Path, default=Path("differential-report.json"), help="JSON report path")
    parser.add_argument("--log", type=Path, default=Path("differential-ours.log"), help="--start-ours server log")
    parser.add_argument("--shapes", action="store_true", help="also print the body-shape differences")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each step as it runs")
    return parser.parse_args(argv)


@contextmanager
def our_server(args: argparse.Namespace) -> Iterator[str]:
    if args.ours:
        yield args.ours
        return
    env = dict(item.split("=", 1) for item in args.ours_env)
    print(f"starting our server (log: {args.log}) ...", flush=True)
    with started_server(args.ours_port, args.ours_data_dir, env, args.log) as url:
        print(f"our server is up at {url}", flush=True)
        yield url


def run(upstream_url: str, ours_url: str, verbose: bool) -> tuple[list[Result], dict[str, Any]]:
    run_id = secrets.token_hex(4)
    shared = {"run": run_id, "client_uuid": str(uuid.uuid4())}
    targets = [Target("upstream", upstream_url, dict(shared)), Target("ours", ours_url, dict(shared))]
    results: list[Result] = []
    started = time.monotonic()
    try:
        for section, step in all_steps():
            # Interleaved, so both servers see each step at nearly the same time.
            upstream, ours = (target.send(step) for target in targets)
            result = compare(section, step, upstream, ours)
            results.append(result)
            if verbose:
                flag = f"  <-- {result.verdict.category}" if result.verdict else ""
                print(
                    f"[{section}] {step.name}: {step.method} {step.path} "
                    f"upstream {upstream.status or upstream.skipped or upstream.error} "
                    f"ours {ours.status or ours.skipped or ours.error}{flag}",
                    flush=True,
                )
        meta: dict[str, Any] = {
            "run": run_id,
            "upstream": upstream_url,
            "ours": ours_url,
            "seconds": round(time.monotonic() - started, 1),
        }
        with contextlib.suppress(httpx.HTTPError, ValueError):
            openapi = httpx.get(f"{ours_url.rstrip('/')}/openapi.json", timeout=30).json()
            meta["routes_covered"], meta["routes_uncovered"] = route_coverage(openapi, results)
    finally:
        for target in targets:
            target.close()
    return results, meta


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with our_server(args) as ours_url:
        results, meta = run(args.upstream, ours_url, args.verbose)
    args.json.write_text(to_json(results, meta))
    print(summary(results, meta, args.shapes))
    print(f"\nJSON report: {args.json}")
    return 1 if any(r.verdict and r.verdict.category == OUR_BUG for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
