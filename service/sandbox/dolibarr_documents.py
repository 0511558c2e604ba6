"""Documents (ECM files) of the simulated Dolibarr: ``/documents`` upload, list, download, delete.

Follows ``htdocs/api/class/api_documents.class.php`` of 20: files live in ``<modulepart dir>/<sanitized
ref>/<sanitized filename>``; an upload needs an existing object (404 "Object with ref '...' was not found."),
refuses an existing name unless ``overwriteifexists`` (400), returns the file name; the list answers 404 when
the object has no file; delete answers 404 "File not found" for a missing file.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING, Any, ClassVar

from service.sandbox.dolibarr_table import DolibarrError, Obj, Table

DOC_OBJECT_TYPES = {"produit": "product", "facture": "facture", "commande": "commande", "societe": "societe"}


def _sanitize_filename(name: str) -> str:
    """``dol_sanitizeFileName``: characters that are not allowed in a file name become ``_``."""
    return re.sub(r"[/\\:*?\"<>|\[\],;=]|^\.+", "_", name).strip()


def _mimetype(name: str) -> str:
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return {
        "jpg": "image/jpeg",
        "jpeg": "image/jpeg",
        "png": "image/png",
        "gif": "image/gif",
        "webp": "image/webp",
        "pdf": "application/pdf",
        "txt": "text/plain",
        "csv": "text/csv",
    }.get(ext, "application/octet-stream")


def _int(v: Any, default: int = 0) -> int:
    try:
        return int(str(v).strip())
    except (TypeError, ValueError):
        return default


class DocumentsMixin:
    if TYPE_CHECKING:
        products: Table
        orders: Table
        invoices: Table
        thirdparties: Table
        documents: dict[tuple[str, str], dict[str, dict[str, Any]]]

        def now(self) -> int: ...
        def next_counter(self, name: str) -> int: ...

    # ------------------------------------------------------------------------------------------------------
    # documents (ECM files of an object)
    # ------------------------------------------------------------------------------------------------------
    DOC_DIRS: ClassVar[dict[str, str]] = {
        "product": "produit",
        "produit": "produit",
        "service": "produit",
        "invoice": "facture",
        "facture": "facture",
        "order": "commande",
        "commande": "commande",
        "thirdparty": "societe",
        "societe": "societe",
    }

    def _doc_object(
        self, modulepart: str, *, oid: int | None = None, ref: str | None = None
    ) -> tuple[str, Obj]:
        mp = self.DOC_DIRS.get(modulepart)
        if mp is None:
            raise DolibarrError(
                500, f"Modulepart {modulepart} not implemented yet.", "api_documents.class.php:560"
            )
        table = {"produit": self.products, "facture": self.invoices, "commande": self.orders,
                 "societe": self.thirdparties}[mp]  # fmt: skip
        obj: Obj | None = None
        if oid:
            obj = table.get(oid)
        elif ref:
            if mp == "societe":
                obj = next((o for o in table.values() if o["name"] == ref), None)
            else:
                obj = self._by_ref(table, ref)
        if obj is None:
            raise DolibarrError(
                404, f"Object with ref '{ref or oid}' was not found.", "api_documents.class.php:580"
            )
        return mp, obj

    @staticmethod
    def _by_ref(table: Table, ref: str) -> Obj | None:
        if "ref" in table.indexed:
            return table.first_by("ref", ref)
        return next((o for o in table.values_sorted() if o.get("ref") == ref), None)

    def _doc_dir(self, mp: str, obj: Obj) -> str:
        return str(obj["id"]) if mp == "societe" else _sanitize_filename(str(obj["ref"]))

    def upload_document(self, body: dict[str, Any]) -> str:
        filename = body.get("filename")
        modulepart = body.get("modulepart")
        if filename in (None, ""):
            raise DolibarrError(400, "`filename` is required.", "Validator.php:436", stage="validate")
        if modulepart in (None, ""):
            raise DolibarrError(400, "`modulepart` is required.", "Validator.php:436", stage="validate")
        ref = body.get("ref") or ""
        if not ref:
            raise DolibarrError(
                400, "This value of modulepart is not allowed without ref", "api_documents.class.php:640"
            )
        mp, obj = self._doc_object(str(modulepart), ref=str(ref))
        content = body.get("filecontent") or ""
        if body.get("fileencoding") == "base64":
            try:
                data = base64.b64decode(str(content), validate=False)
            except (binascii.Error, ValueError):
                data = b""
        else:
            data = str(content).encode("utf-8")
        name = _sanitize_filename(str(filename))
        if name.startswith(".") or ".." in name:
            raise DolibarrError(500, f"Refused to deliver file {name}", "api_documents.class.php:760")
        files = self.documents.setdefault((mp, self._doc_dir(mp, obj)), {})
        overwrite = _int(body.get("overwriteifexists"), 0)
        if name in files and not overwrite:
            raise DolibarrError(
                400, f"File with name '{name}' already exists.", "api_documents.class.php:720"
            )
        now = self.now()
        prev = files.get(name)
        files[name] = {
            "content": data,
            "date": now,
            "rowid": prev["rowid"] if prev else self.next_counter("ecm"),
            "src_object_id": obj["id"],
            "date_c": prev["date_c"] if prev else now,
        }
        return name

    DOC_ROOT: ClassVar[str] = "/var/lib/dolibarr/documents"

    def list_documents(self, modulepart: str, *, oid: int | None = None, ref: str | None = None) -> list[Obj]:
        mp, obj = self._doc_object(modulepart, oid=oid, ref=ref)
        d = self._doc_dir(mp, obj)
        files = self.documents.get((mp, d), {})
        if not files:
            raise DolibarrError(
                404,
                f"Search for modulepart {modulepart} with Id {obj['id']}"
                + (f" or Ref {obj['ref']}" if obj.get("ref") else "")
                + " does not return any document.",
                "api_documents.class.php:420",
            )
        out = []
        path = f"{self.DOC_ROOT}/{mp}/{d}"
        for name in sorted(files):
            f = files[name]
            out.append(
                {
                    "name": name,
                    "path": path,
                    "level1name": d,
                    "relativename": name,
                    "fullname": f"{path}/{name}",
                    "date": f["date"],
                    "size": len(f["content"]),
                    "type": "file",
                    "rowid": str(f["rowid"]),
                    "label": None,
                    "entity": "1",
                    "filename": name,
                    "filepath": f"{mp}/{d}",
                    "fullpath_orig": name,
                    "description": None,
                    "keywords": None,
                    "cover": None,
                    "position": "0",
                    "gen_or_uploaded": "api",
                    "extraparams": None,
                    "date_c": f["date_c"],
                    "date_m": f["date"],
                    "fk_user_c": "1",
                    "fk_user_m": None,
                    "acl": None,
                    "src_object_type": DOC_OBJECT_TYPES[mp],
                    "src_object_id": str(f["src_object_id"]),
                    "content-type": _mimetype(name),
                }
            )
        return out

    def _doc_path(self, modulepart: str, original_file: str) -> tuple[tuple[str, str], str]:
        mp = self.DOC_DIRS.get(modulepart)
        if mp is None:
            raise DolibarrError(403, "", "api_documents.class.php:860")
        if ".." in original_file or re.search(r"[<>|]", original_file):
            raise DolibarrError(403, "", "api_documents.class.php:860")
        d, _, name = original_file.strip("/").rpartition("/")
        return (mp, d), name

    def document_content(self, modulepart: str, original_file: str) -> Obj:
        key, name = self._doc_path(modulepart, original_file)
        f = self.documents.get(key, {}).get(name)
        if f is None:
            raise DolibarrError(404, "File not found", "api_documents.class.php:120")
        return {
            "filename": name,
            "content-type": _mimetype(name),
            "filesize": len(f["content"]),
            "content": base64.b64encode(f["content"]).decode("ascii"),
            "encoding": "base64",
        }

    def delete_document(self, modulepart: str, original_file: str) -> None:
        key, name = self._doc_path(modulepart, original_file)
        files = self.documents.get(key, {})
        if name not in files:
            raise DolibarrError(404, "File not found", "api_documents.class.php:880")
        del files[name]
