"""Dolibarr answers the error table misread (found by the crash harness and the deletion tests)."""

from __future__ import annotations

import json

import pytest

from service.dolibarr.errors import CategoryAlreadyExists, ObjectInUse, classify
from service.errors import PermanentError, Where


def restler(status: int, message: str, detail: str) -> bytes:
    return json.dumps({"error": {"code": status, "message": message}, "0": detail}).encode()


@pytest.mark.parametrize(
    "detail",
    [
        "CategoryExistsAtSameLevel",  # translations not loaded: the key
        "Impossible to add the tag/category Tees : This category already exists with this ref",  # translated
        "Impossible to add the tag/category Tees : Tag/category already exists at this level",
        "Impossible d'ajouter la catégorie Tees : Cette catégorie existe déjà avec cette réf",
    ],
)
def test_a_category_that_exists_at_the_same_level_is_recognised_in_any_wording(detail: str) -> None:
    """Regression: only the language key was recognised; the translated sentence became a plain PermanentError,
    so an ambiguous category create retried after its answer was lost failed for good instead of adopting the
    category it had made."""
    body = restler(500, "Internal Server Error: Error when creating category", detail)
    error = classify("POST", 500, {}, body, Where(), route="/categories")
    assert isinstance(error, CategoryAlreadyExists)


def test_a_delete_refused_because_the_record_has_children_is_object_in_use() -> None:
    """A customer with orders: Dolibarr refuses the delete with a 500; the reconcile falls back to deactivating."""
    body = restler(500, "Internal Server Error: Error when deleting thirdparty", "ErrorRecordHasChildren")
    error = classify("DELETE", 500, {}, body, Where(), route="/thirdparties/4")
    assert isinstance(error, ObjectInUse)
    # the same words on a create are not about deleting: a plain refusal
    other = classify("POST", 500, {}, body, Where(), route="/thirdparties")
    assert isinstance(other, PermanentError) and not isinstance(other, ObjectInUse)
