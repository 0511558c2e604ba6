"""A lost state file on the simulators: the next sync adopts by ref_ext and writes nothing it wrote already.
(The real pair's version: tests/real/test_exactly_once.py.)"""

from __future__ import annotations

from pathlib import Path

from service.sandbox.shop_generator import generate_shop
from tests.conftest import SandboxFactory
from tests.e2e.catalog_support import sync, writes


def lose(state: Path) -> None:
    for path in state.parent.glob(f"{state.name}*"):
        path.unlink()


async def test_a_lost_state_file_uploads_no_image_again(make_sandbox: SandboxFactory, tmp_path: Path) -> None:
    """Images attached already (a lost state file, a crash between the upload and the commit) are adopted, not
    uploaded again: the real pair got 47 uploads of unchanged images after a state loss."""
    shop = generate_shop(10, categories=8, products=8, customers=2, combination_share=0.0)
    sandbox = await make_sandbox({"main": shop})
    state = tmp_path / "s.sqlite3"
    await sync(sandbox, state)
    assert sandbox.dolibarr_requests.total("POST", "/documents") > 0
    lose(state)
    sandbox.dolibarr_requests.reset()
    await sync(sandbox, state)
    assert [w for w in writes(sandbox) if w[1].startswith("/documents")] == []
