"""The real pair as a session fixture: ``up.sh`` once per test session when ``../shared/realpair`` is beside the
repository. Without the kit the real tests are skipped, except under ``CI=true``, where a pair that cannot come up
fails the run (a green CI must mean the real tests ran)."""

from __future__ import annotations

import os

import pytest

from tests.real.ledger import CleanRun
from tests.real.ledger import clean_run as clean_run_of
from tests.real.realpair import Pair, kit_present, up

# a first up.sh on a bare machine installs packages and builds both servers: minutes, not the default 300 s
REAL_TIMEOUT_S = 1800


def _is_real(item: pytest.Item) -> bool:
    return "tests/real/" in str(item.path).replace(os.sep, "/")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The real tests first: under pytest-xdist they are one unit of work on one worker (tests/conftest.py), the
    longest part of the run, which starts at once while the other workers take the fast suite."""
    for item in items:
        if _is_real(item):
            item.add_marker(pytest.mark.timeout(REAL_TIMEOUT_S))
    items.sort(key=lambda item: not _is_real(item))  # stable: the order within each part stays


@pytest.fixture(scope="session")
def pair() -> Pair:
    in_ci = bool(os.environ.get("CI"))
    if not kit_present():
        if in_ci:
            pytest.fail("CI: ../shared/realpair is missing beside the repository: the real tests cannot run")
        pytest.skip("../shared/realpair is not beside the repository")
    if os.geteuid() != 0 and not in_ci:
        pytest.skip("the real pair's scripts need root (up.sh, reset.sh)")
    try:
        env = up()
    except Exception as exc:  # any failure to come up is reported as it is
        if in_ci:
            pytest.fail(f"CI: the real pair did not come up: {exc}")
        pytest.skip(f"the real pair did not come up: {exc}")
    return Pair(env)


@pytest.fixture(scope="session")
def clean_run(pair: Pair, tmp_path_factory: pytest.TempPathFactory) -> CleanRun:
    """One uninterrupted sync of the whole seeded shop into ``clean-mc``, once per session: the crash and
    outage tests (tests/real/test_exactly_once.py, test_outages.py) must end with the same Dolibarr."""
    run = clean_run_of(pair, tmp_path_factory.mktemp("clean-run"))
    assert run.exit_code == 0, f"the clean run exited {run.exit_code}: see {run.settings.parent}"
    return run
