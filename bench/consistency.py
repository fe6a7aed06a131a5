"""The long randomized consistency run of the face library (issue 20, item 8).

    python -m bench.consistency [--config fleet|sqlite|both] [--seeds 20] [--seed S] [--steps 300]
                                [--faults N] [--fault-kinds kill9,restart,pg-stop,stall,rows-full]
                                [--imports N] [--no-quota] [--keep-going] [--sabotage KIND]
                                [--json out.json]

The same harness as tests/api/test_consistency.py (tests/consistency_harness.py, with the model in
tests/consistency_model.py), for longer: each seed is a random sequence of `--steps` operations
(writes of both protocols, `renlian import` beside the servers, searches) with `--faults` faults
spread over it, against real processes on this machine: "fleet" is two `renlian serve` nodes on one
throwaway PostgreSQL cluster (tests/postgres_cluster.py), each reaching it through a TCP proxy the
harness can stall; "sqlite" is one node on SQLite with the imports writing into its data directory.
The deployments are started once and every seed gets apps of its own.

By default a seed stops at its first property violation (what follows a divergence mostly repeats
it); `--keep-going` records up to 30 per seed, the model following the store after each.
`--sabotage KIND` corrupts the harness on purpose (score: every brute-force score 0.2 too high;
drop-add / keep-delete: the model ignores one acknowledged add / delete; quota: one request fewer
allowed; refusal: no fault excuses a refusal; store: the model forgets a group at the final check;
lag: no staleness allowed at all, so a node's first answer after another node's write is stale),
to show that the matching checks fire.

Output: one line per seed on stderr, then the totals (operations, faults by kind, seeds with any
violation and their kinds); `--json` writes every report, with each violation's message and the
operations before it.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.datasets import analyzer, machine
from renlian.settings import Settings
from tests.consistency_harness import SABOTAGE, Options, Report, Scenario, deployment, rows_full_hook_present
from tests.consistency_model import FacePool
from tests.postgres_cluster import Cluster, binaries


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", choices=("fleet", "sqlite", "both"), default="both")
    parser.add_argument("--seeds", type=int, default=20, help="how many seeds per deployment")
    parser.add_argument("--seed", type=int, help="the first seed (the others follow it); random if left out")
    parser.add_argument("--steps", type=int, default=300, help="operations per seed")
    parser.add_argument("--faults", type=int, help="faults per seed (default: one per 30 steps, at least 2)")
    parser.add_argument(
        "--fault-kinds", help="comma-separated subset of kill9,restart,pg-stop,stall,rows-full"
    )
    parser.add_argument(
        "--imports", type=int, help="`renlian import` runs per seed (default: one per 60 steps)"
    )
    parser.add_argument("--no-quota", action="store_true", help="no total-quota burst")
    parser.add_argument("--keep-going", action="store_true", help="go on after a violation")
    parser.add_argument("--sabotage", choices=SABOTAGE, default="")
    parser.add_argument("--pool-size", type=int, default=64, help="distinct augmented faces per seed")
    parser.add_argument("--sweep-limit", type=int, default=12, help="probes per node and app in a sweep")
    parser.add_argument("--json", type=Path, help="write every report here")
    return parser.parse_args()


def summary(name: str, reports: list[Report]) -> dict[str, Any]:
    failing = {r.seed: sorted({v.kind for v in r.violations}) for r in reports if r.violations}
    return {
        "deployment": name,
        "seeds": len(reports),
        "operations": sum(r.operations for r in reports),
        "faults": sum(len(r.faults) for r in reports),
        "faults_by_kind": dict(Counter(kind for r in reports for kind in r.faults)),
        "seeds_with_violations": len(failing),
        "violating_seeds": failing,
        "violations_by_kind": dict(Counter(v.kind for r in reports for v in r.violations)),
        "seconds": round(sum(r.seconds for r in reports), 1),
        "reloads_at_end": {r.seed: r.reloads for r in reports},
    }


def main() -> int:
    args = parse()
    first = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1_000_000)
    seeds = [first + n for n in range(args.seeds)]
    kinds = tuple(args.fault_kinds.split(",")) if args.fault_kinds else None
    options = Options(
        steps=args.steps,
        faults=args.faults if args.faults is not None else max(2, args.steps // 30),
        fault_kinds=kinds,
        imports=args.imports if args.imports is not None else max(1, args.steps // 60),
        quota=not args.no_quota,
        keep_going=args.keep_going,
        sabotage=args.sabotage,
        pool_size=args.pool_size,
        sweep_limit=args.sweep_limit,
    )
    hook = rows_full_hook_present()
    log(
        f"seeds {seeds[0]}..{seeds[-1]}, {args.steps} steps, {options.faults} faults and "
        f"{options.imports} imports per seed"
    )
    if not hook:
        log("note: renlian does not read RENLIAN_FAULT_ROWS_FULL: the rows-full fault changes nothing")
    faces = analyzer(Settings().recognizer)
    configs = ["fleet", "sqlite"] if args.config == "both" else [args.config]
    results: dict[str, list[Report]] = {}
    cluster: Cluster | None = None
    with tempfile.TemporaryDirectory(prefix="renlian-consistency-") as scratch:
        try:
            if "fleet" in configs:
                found = binaries()
                if found is None:
                    log("PostgreSQL's initdb is not installed: the fleet deployment is skipped")
                    configs.remove("fleet")
                else:
                    cluster = Cluster(found)
            for name in configs:
                root = Path(scratch) / name
                started = time.monotonic()
                with deployment(name, root / "deployment", cluster) as running:
                    log(f"{name}: started in {time.monotonic() - started:.1f} s")
                    reports = results.setdefault(name, [])
                    for seed in seeds:
                        pool = FacePool(seed, faces, options.pool_size, options.composites)
                        seed_dir = root / f"seed-{seed}"
                        seed_dir.mkdir(parents=True)
                        report = Scenario(seed, running, pool, faces.embedder.name, options, seed_dir).run()
                        reports.append(report)
                        kinds_seen = ",".join(sorted({v.kind for v in report.violations})) or "none"
                        log(
                            f"{name} seed {seed}: {report.operations} operations, faults {report.faults}, "
                            f"{report.seconds} s, violations: {kinds_seen}"
                        )
                        for violation in report.violations[:1]:
                            log("  " + violation.format(report.replay).replace("\n", "\n  "))
                        if report.broken:
                            log(
                                f"{name}: the deployment could not be restored; "
                                "its remaining seeds are skipped"
                            )
                            break
        finally:
            if cluster is not None:
                cluster.stop()
    totals = {name: summary(name, reports) for name, reports in results.items()}
    for name, total in totals.items():
        print(
            f"{name}: {total['seeds']} seeds, {total['operations']} operations, {total['faults']} faults "
            f"{total['faults_by_kind']}; seeds with violations: {total['seeds_with_violations']} "
            f"{total['violating_seeds']}; violations by kind: {total['violations_by_kind']}"
        )
    if args.json is not None:
        document = {
            "machine": machine(),
            "rows_full_hook_present": hook,
            "options": asdict(options),
            "seeds": seeds,
            "totals": totals,
            "reports": {name: [asdict(r) for r in reports] for name, reports in results.items()},
        }
        args.json.write_text(json.dumps(document, indent=1, default=str))
    return 1 if any(t["seeds_with_violations"] for t in totals.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
