"""The real crash test, bigger than CI's: ``ps2doli sync`` of the whole seeded shop into the real Dolibarr 20.0.2,
SIGKILLed many times, optionally through the cutting proxy (every Nth write loses its answer), then run to its
end; compared with one uninterrupted run.

    REALPAIR_HOME=/srv/realpair2 .venv/bin/python bench/real_crash.py [--kills 40] [--seed 1] [--cut-every 0]
                                                                       [--folder DIR] [--json]

Prints kills, faults (answers cut), duplicates (must be 0), differences from the clean run (must be none), the
writes of a last sync (must be 0) and the times. Exit status 0 when all hold. Needs the real pair
(``../shared/realpair``, root). The CI-sized run is tests/real/test_exactly_once.py.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.real.faults import CuttingProxy, crash_sync, failures  # noqa: E402
from tests.real.ledger import clean_run, differences, full_settings, ledger_of  # noqa: E402
from tests.real.realpair import Pair, up  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--cut-every", type=int, default=0, help="drop the answer of every Nth write (0: never)"
    )
    parser.add_argument("--folder", type=Path, default=None, help="where the settings, state and logs go")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    pair = Pair(up())
    folder = args.folder or Path(tempfile.mkdtemp(prefix="ps2doli-real-crash-"))
    (folder / "clean").mkdir(parents=True, exist_ok=True)
    (folder / "crash").mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    reference = clean_run(pair, folder / "clean")
    if reference.exit_code != 0:
        print(f"the clean run exited {reference.exit_code}: see {folder / 'clean'}")
        return 2

    pair.reset("clean-mc")
    with contextlib.ExitStack() as stack:
        overrides = {}
        proxy = None
        if args.cut_every:
            proxy = stack.enter_context(CuttingProxy(pair.doli_url, args.cut_every))
            overrides["dolibarr"] = {"url": f"{proxy.url}/api/index.php"}
        settings = full_settings(pair, folder / "crash", **overrides)
        report = crash_sync(pair, settings, kills=args.kills, span_s=reference.seconds, seed=args.seed)
        if proxy is not None:
            proxy.active = False
        ledger = ledger_of(pair)
        pair.mark_writes()
        last = pair.ps2doli(settings, "sync")
        last_writes = pair.writes()
        queue = failures(pair, settings)
    diff = differences(reference.ledger, ledger)
    figures = {
        "kills": report.kills,
        "runs": len(report.runs),
        "answers_cut": len(proxy.cut) if proxy is not None else 0,
        "duplicates": ledger.total_duplicates(),
        "differences": diff,
        "objects": ledger.counts(),
        "failures": queue,
        "clean_failures": reference.failures,
        "last_sync_exit": last.returncode,
        "last_sync_writes": len(last_writes),
        "clean_run_s": round(reference.seconds, 1),
        "crash_run_s": round(report.seconds, 1),
        "total_s": round(time.monotonic() - t0, 1),
    }
    ok = (
        report.final_exit == 0
        and figures["duplicates"] == 0
        and not diff
        and queue == reference.failures
        and last.returncode == 0
        and not last_writes
    )
    if args.json:
        print(json.dumps({**figures, "ok": ok}, indent=2))
    else:
        print(f"real crash: {report.render()}")
        print(f"  answers cut by the proxy: {figures['answers_cut']} (every {args.cut_every or '-'}th write)")
        print(f"  objects: {figures['objects']}")
        print(f"  duplicates: {figures['duplicates']}; differences from the clean run: {len(diff)}")
        for line in diff[:20]:
            print(f"    {line}")
        print(f"  failure queue: {len(queue)} (clean run: {len(reference.failures)})")
        print(f"  last sync: exit {last.returncode}, {len(last_writes)} writes")
        print(
            f"  times: clean run {figures['clean_run_s']}s, crash run {figures['crash_run_s']}s, "
            f"all {figures['total_s']}s -> {'OK' if ok else 'FAILED'} (logs in {folder})"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
