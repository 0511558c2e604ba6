"""Pushes that are not Dolibarr objects of their own: a product's stock in a warehouse, a product's image files.

:class:`~service.engine.writer.ObjectWriter` hands :class:`StockPayload` and :class:`ImagesPayload` items here
(a dispatch by payload type). The same rules hold as for objects: an unchanged payload costs no request, the
outcome is committed in one transaction with the record (``records`` kind ``stock`` / ``images``), and a push
that is repeated after a crash converges instead of doing the work twice.

Stock (``catalog.stock_mode = "mirror"``): the shop is the truth. The movement posted is the difference between
the shop's quantity and Dolibarr's real stock in the warehouse, read just before (the port knows it without a
read for a product it has just created: none); nothing is posted when they are equal (Dolibarr answers 503 to a
movement of 0). The level the record last verified is not used instead of that read: validating an order with a
warehouse, or a hand correction, moves Dolibarr's stock, and a movement from a stale level would be a wrong
movement and its correction in the stock history. Posting a movement is not idempotent, so after an ambiguous
answer the level is read again and only what is still missing is moved. A crash between the movement and the
commit is harmless for the same reason: the next sweep reads the level, finds it right, and moves nothing.

Images: the record keeps, per shop image id, the file name and the SHA-256 of the bytes attached. A new image is
downloaded from the shop and uploaded (``overwriteifexists``: an upload repeated after a crash replaces the file,
it does not add one); an image gone from the shop is deleted from Dolibarr; an unchanged image is never
downloaded nor uploaded again. With no record of the product's images at all (a first sync, a crash before the
commit, a lost state file), the files Dolibarr holds are listed once (the port knows a product it has just
created holds none): a file of that name and the shop image's
size is adopted, not uploaded again (Dolibarr's REST listing gives no hash of the bytes: an image replaced in the
shop by one of exactly the same size while the state was lost is not seen). The images sweep (items read by the ``images`` resource) also downloads the
images already attached and uploads only those whose bytes changed (an image replaced under the same id).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import structlog

from service.dolibarr.errors import DatabaseBusy
from service.dolibarr.model import ImagesPayload, Ref, StockPayload
from service.engine.writer import busy_delay
from service.errors import AmbiguousWrite, ConfigError, NotFound, PermanentError, TransientError

if TYPE_CHECKING:
    from service.engine.writer import Item, ObjectWriter, Outcome
    from service.state.store import RecordRow

log = structlog.get_logger("ps2doli.catalog")

STOCK_TRIES = 5  # level reads, each followed by a movement while the level is wrong
# items read by this resource check the bytes of images already attached (the images sweep)
VERIFY_RESOURCE = "images"


def _product_id(payload: StockPayload | ImagesPayload, ids: Mapping[Ref, int]) -> int:
    try:
        return ids[payload.product]
    except KeyError:
        raise PermanentError(f"{payload.product.ref_ext} was not resolved to a Dolibarr product") from None


async def push_side(
    writer: ObjectWriter, item: Item, known: RecordRow | None, ids: Mapping[Ref, int]
) -> tuple[Outcome, int]:
    payload = item.payload
    if isinstance(payload, StockPayload):
        return await push_stock(writer, item, payload, known, ids)
    if isinstance(payload, ImagesPayload):
        return await push_images(writer, item, payload, known, ids)
    raise PermanentError(f"no writer for a {type(payload).__name__}")


# ------------------------------------------------------------------------------------------------ stock


def stock_label(writer: ObjectWriter, payload: StockPayload) -> str:
    return f"ps2doli: stock of shop {writer.shop} ({payload.ref_ext})"


async def push_stock(
    writer: ObjectWriter, item: Item, payload: StockPayload, known: RecordRow | None, ids: Mapping[Ref, int]
) -> tuple[Outcome, int]:
    from service.engine.writer import Outcome

    product_id = _product_id(payload, ids)
    digest = item.hash
    if known is not None and known.hash == digest and known.dolibarr_id == product_id and not known.deleted:
        return Outcome.UNCHANGED, product_id
    first_level: Decimal | None = None
    # Every movement is checked by reading the level again: besides ambiguous answers and deadlocks (rolled
    # back), a real Dolibarr 20 under parallel writes sometimes answers 200 to a movement it did not keep (seen:
    # 5 of 255 movements with a deadlock elsewhere in the same request). The loop ends when the level is right.
    for attempt in range(STOCK_TRIES):
        busy = 0.0
        async with writer.lanes.slot():
            level = await writer.port.stock_level(product_id, payload.warehouse_id)
            first_level = level if first_level is None else first_level
            missing = payload.quantity - level
            if not missing:
                break
            if attempt:
                log.warning(
                    "dolibarr.stock_move_again",
                    shop=writer.shop,
                    ps_id=item.ps_id,
                    product=product_id,
                    level=str(level),
                    wanted=str(payload.quantity),
                    attempt=attempt,
                )
            try:
                await writer.port.move_stock(
                    product_id, payload.warehouse_id, missing, stock_label(writer, payload)
                )
            except DatabaseBusy as exc:
                log.info("dolibarr.busy_retry", shop=writer.shop, ps_id=item.ps_id, error=exc.message)
                busy = busy_delay(attempt)
            except AmbiguousWrite as exc:
                # a movement is not idempotent: the level is read again before moving what is still missing
                log.warning(
                    "dolibarr.stock_move_ambiguous",
                    shop=writer.shop,
                    ps_id=item.ps_id,
                    attempt=attempt,
                    error=exc.message,
                )
        await asyncio.sleep(busy)
    else:
        raise TransientError(
            f"the stock of {payload.ref_ext} in warehouse {payload.warehouse_id} did not reach "
            f"{payload.quantity} after {STOCK_TRIES} movements (Dolibarr kept some of them)"
        )
    moved = payload.quantity - (first_level if first_level is not None else payload.quantity)
    await writer.store.save_record(
        writer.shop,
        item.kind,
        item.ps_id,
        dolibarr_id=product_id,
        ref_ext=payload.ref_ext,
        hash=digest,
        state=json.dumps(
            {"warehouse": payload.warehouse_id, "quantity": str(payload.quantity), "moved": str(moved)}
        ),
    )
    if moved:
        log.info(
            "dolibarr.stock_moved",
            shop=writer.shop,
            ps_id=item.ps_id,
            product=product_id,
            warehouse=payload.warehouse_id,
            qty=str(moved),
        )
    return (Outcome.UPDATED if moved else Outcome.UNCHANGED), product_id


# ----------------------------------------------------------------------------------------------- images


def _files_state(known: RecordRow | None, product_id: int) -> dict[str, dict[str, str]]:
    """What the record says is attached to this Dolibarr product: image id -> {name, sha256}."""
    if known is None or known.dolibarr_id != product_id or known.deleted or not known.state.startswith("{"):
        return {}
    try:
        files = json.loads(known.state).get("files", {})
    except ValueError:
        return {}
    return {str(k): dict(v) for k, v in files.items()} if isinstance(files, dict) else {}


async def _download(writer: ObjectWriter, payload: ImagesPayload, image_id: int) -> bytes | None:
    source: Any = writer.source
    if source is None:
        raise ConfigError(f"no shop client to read the images of shop {writer.shop}")
    try:
        content: bytes = await source.image(payload.id_product, image_id)
    except NotFound:
        log.info("prestashop.image_gone", shop=writer.shop, product=payload.id_product, image=image_id)
        return None
    return content


async def push_images(
    writer: ObjectWriter, item: Item, payload: ImagesPayload, known: RecordRow | None, ids: Mapping[Ref, int]
) -> tuple[Outcome, int]:
    from service.engine.writer import Outcome

    product_id = _product_id(payload, ids)
    digest = item.hash
    verify = item.resource == VERIFY_RESOURCE
    if (
        not verify
        and known is not None
        and known.hash == digest
        and known.dolibarr_id == product_id
        and not known.deleted
    ):
        return Outcome.UNCHANGED, product_id
    files = _files_state(known, product_id)
    wanted = {str(image_id): name for image_id, name in payload.images}
    changes = 0
    # with no record of this product's files (a first sync, a crash before the commit, a lost state file): the
    # files Dolibarr already holds, read once, so that an image attached already is not uploaded again
    attached: dict[str, int] | None = {} if known is not None else None
    for image_id, name in payload.images:
        current = files.get(str(image_id))
        if current is not None and current.get("name") == name and not verify:
            continue
        content = await _download(writer, payload, image_id)
        if content is None:
            wanted.pop(str(image_id), None)
            continue
        sha = hashlib.sha256(content).hexdigest()
        if current is not None and current.get("name") == name and current.get("sha") == sha:
            continue  # verified: the same bytes are attached already
        if attached is None:
            async with writer.lanes.slot():
                attached = {f.name: f.size for f in await writer.port.list_files("product", product_id)}
        if attached.get(name) == len(content):
            files[str(image_id)] = {"name": name, "sha": sha}  # attached before: adopted as it is
            continue
        async with writer.lanes.slot():
            await writer.port.upload_file("product", product_id, name, content)
        files[str(image_id)] = {"name": name, "sha": sha}
        changes += 1
    for key in sorted(set(files) - set(wanted)):
        name = files[key].get("name", "")
        if name and name not in wanted.values():
            async with writer.lanes.slot():
                await writer.port.delete_file("product", product_id, name)
            changes += 1
        del files[key]
    await writer.store.save_record(
        writer.shop,
        item.kind,
        item.ps_id,
        dolibarr_id=product_id,
        ref_ext=payload.ref_ext,
        hash=digest,
        state=json.dumps({"files": files}, sort_keys=True),
    )
    if changes:
        log.info(
            "dolibarr.images_synced", shop=writer.shop, ps_id=item.ps_id, product=product_id, changes=changes
        )
    if not changes:
        return Outcome.UNCHANGED, product_id
    return (Outcome.CREATED if known is None else Outcome.UPDATED), product_id
