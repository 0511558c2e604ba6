"""Dolibarr's database stopped at many moments of a first sync: CI's outage test (one 10 s stop after 1,300
writes) widened into a search for the answers a Dolibarr losing its database gives mid-call.

    REALPAIR_HOME=/srv/realpair2 .venv/bin/python bench/real_db_stops.py [--rounds 12] [--seed 1]
                                                                          [--folder DIR] [--json]

Each round: both servers reset, ``ps2doli sync`` of the whole seeded shop started, MariaDB stopped after a drawn
number of Dolibarr writes for a drawn 1-10 s, started again, the sync let finish, then a second sync (the one
that resumes an outage that outlasted the retries). A round fails when the failure queue holds a record the
clean run does not (an outage is no record's failure: each one is an answer read as a refusal), when Dolibarr
holds something twice, when it differs from the clean run, or when the first sync ends as a configuration error
(exit 2: an answer of the outage read as a wrong key or setting). Prints each round and the failures; exit status
0 when every round holds. Needs the real pair (``../shared/realpair``, root).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.real.faults import (  # noqa: E402
    failures,
    start,
    start_dolibarr_db,
    stop_dolibarr_db,
    wait_for_writes,
)
from tests.real.ledger import clean_run, differences, full_settings, ledger_of  # noqa: E402
from tests.real.realpair import Pair, up  # noqa: E402


def one_round(
    pair: Pair, folder: Path, after_writes: int, stop_s: float, clean_failures: list[str]
) -> dict[str, Any]:
    pair.reset("clean-mc")
    settings = full_settings(pair, folder)
    pair.mark_writes()
    t0 = time.monotonic()
    process, log = start(pair, settings, "sync")
    seen = wait_for_writes(pair, after_writes, process)
    stopped = process.poll() is None
    if stopped:
        stop_dolibarr_db(pair)
        time.sleep(stop_s)
        start_dolibarr_db(pair)
    first = process.wait(timeout=900)
    second = pair.ps2doli(settings, "sync").returncode
    filed = [f for f in failures(pair, settings) if f not in clean_failures]
    return {
        "after_writes": seen,
        "stop_s": stop_s if stopped else 0.0,
        "exits": [first, second],
        "seconds": round(time.monotonic() - t0, 1),
        "filed": filed,
        "log": str(log),
        "settings": settings,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--folder", type=Path, default=None, help="where the settings, state and logs go")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    pair = Pair(up())
    folder = args.folder or Path(tempfile.mkdtemp(prefix="ps2doli-real-db-stops-"))
    (folder / "clean").mkdir(parents=True, exist_ok=True)
    pair.mark_writes()  # the reset does not touch the access log: the clean run's writes are those after here
    reference = clean_run(pair, folder / "clean")
    if reference.exit_code != 0:
        print(f"the clean run exited {reference.exit_code}: see {folder / 'clean'}")
        return 2
    total = len(pair.writes())
    rng = random.Random(args.seed)
    rounds: list[dict[str, Any]] = []
    for number in range(args.rounds):
        where = folder / f"round-{number}"
        where.mkdir(parents=True, exist_ok=True)
        result = one_round(
            pair,
            where,
            rng.randint(50, max(60, total - 50)),
            rng.choice((1, 2, 4, 6, 10)),
            reference.failures,
        )
        ledger = ledger_of(pair)
        result["duplicates"] = ledger.total_duplicates()
        result["differences"] = differences(reference.ledger, ledger)
        # an outage is no configuration error: the first sync ends 0 (its retries outlasted it) or 3 (unreachable)
        result["ok"] = (
            result["exits"][0] in (0, 3)
            and not result["filed"]
            and not result["duplicates"]
            and not result["differences"]
        )
        result.pop("settings")
        rounds.append(result)
        if not args.json:
            print(
                f"round {number}: stop {result['stop_s']} s after {result['after_writes']} writes, exits "
                f"{result['exits']}, {result['seconds']} s: {'ok' if result['ok'] else 'FAILED'}",
                flush=True,
            )
            for line in result["filed"] + result["differences"]:
                print(f"    {line}", flush=True)
    if args.json:
        print(json.dumps({"clean_writes": total, "rounds": rounds}, indent=2))
    return 0 if all(r["ok"] for r in rounds) else 1


if __name__ == "__main__":
    sys.exit(main())
