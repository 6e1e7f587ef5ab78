"""Only the store layer (``web_server/store/``) touches MongoDB: everything else calls named ``Store`` methods.

The check reads the source of every module of the application packages with :mod:`ast` and
reports collection calls (``find_one``, ``update_one``, ``insert_one``, ...), ``db[...]``
subscripts, the store's raw collection attributes and imports of pymongo's collection/GridFS
layer. ``bench/`` is left out: ``bench_upload.py`` times raw chunk inserts into a scratch
collection on purpose, as the store's ceiling.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("web_server", "shared", "vid2scene", "sfm_worker", "gs_worker", "nerf_worker")
STORE_LAYER = ROOT / "web_server" / "store"

#: pymongo ``Collection``/``GridFSBucket`` methods no other object of ours has.
COLLECTION_METHODS = frozenset(
    {
        "find_one",
        "find_one_and_update",
        "find_one_and_replace",
        "find_one_and_delete",
        "insert_one",
        "insert_many",
        "update_one",
        "update_many",
        "replace_one",
        "delete_one",
        "delete_many",
        "count_documents",
        "estimated_document_count",
        "create_index",
        "create_indexes",
        "drop_index",
        "bulk_write",
        "open_download_stream",
        "open_upload_stream",
    }
)
#: Methods whose names other types share (``bytes.find``): flagged on a collection-like receiver
#: or with a query document (a dict literal) as the first argument.
AMBIGUOUS_METHODS = frozenset({"find", "distinct", "aggregate", "watch", "drop"})
#: The store's raw collection attributes; ``jobs``/``workers``/``files``/``db`` only on a store.
PRIVATE_ATTRIBUTES = frozenset({"file_docs", "chunk_docs", "api_keys"})
STORE_ATTRIBUTES = frozenset({"jobs", "workers", "files", "db"}) | PRIVATE_ATTRIBUTES
FORBIDDEN_IMPORTS = ("pymongo.collection", "gridfs")


def _name_of(node: ast.expr) -> str | None:
    """The last name of a receiver: ``x`` for ``x``, ``store`` for ``self.store``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _is_store(node: ast.expr) -> bool:
    name = _name_of(node)
    return name is not None and name.lstrip("_").endswith("store")


def _collection_like(node: ast.expr) -> bool:
    if isinstance(node, ast.Subscript):
        return True
    return isinstance(node, ast.Attribute) and node.attr in STORE_ATTRIBUTES and _is_store(node.value)


def _is_collection_call(func: ast.Attribute, args: list[ast.expr]) -> bool:
    if func.attr in COLLECTION_METHODS:
        return True
    query_first = bool(args) and isinstance(args[0], ast.Dict)
    return func.attr in AMBIGUOUS_METHODS and (_collection_like(func.value) or query_first)


def violations(source: str, filename: str = "<source>") -> list[str]:
    """The MongoDB accesses in ``source``, as ``file:line: what`` strings in source order (empty when it keeps the rule)."""
    found: list[tuple[int, int, str]] = []

    def report(node: ast.expr | ast.stmt, what: str) -> None:
        found.append((node.lineno, node.col_offset, f"{filename}:{node.lineno}: {what}"))

    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if _is_collection_call(node.func, node.args):
                report(node, f"collection call .{node.func.attr}()")
        elif isinstance(node, ast.Subscript) and _name_of(node.value) == "db":
            report(node, "db[...]")
        elif isinstance(node, ast.Attribute) and (
            node.attr in PRIVATE_ATTRIBUTES or (node.attr in STORE_ATTRIBUTES and _is_store(node.value))
        ):
            report(node, f"raw collection attribute .{node.attr}")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for module in modules:
                if any(module == m or module.startswith(m + ".") for m in FORBIDDEN_IMPORTS):
                    report(node, f"import {module}")
    return [text for _, _, text in sorted(found)]


def application_modules() -> list[Path]:
    """Every module of the application packages outside the store layer."""
    paths = [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]
    return [p for p in paths if STORE_LAYER not in p.parents]


def test_no_module_outside_the_store_layer_touches_mongodb() -> None:
    modules = application_modules()
    assert len(modules) > 50  # the packages were found
    found = [v for path in modules for v in violations(path.read_text(), str(path.relative_to(ROOT)))]
    assert found == [], "MongoDB access outside web_server/store/ (add a Store method instead):\n" + "\n".join(found)


def test_the_check_catches_each_kind_of_access() -> None:
    source = """
import gridfs
from pymongo.collection import Collection
store.jobs.find_one({"_id": job_id})
self.store.file_docs.find({"uploadDate": {"$lte": cutoff}})
db["jobs"].update_many({}, {"$set": {"x": 1}})
coll.find({"owner": owner})
self._store.jobs.find(query)
store.api_keys
"""
    assert violations(source) == [
        "<source>:2: import gridfs",
        "<source>:3: import pymongo.collection",
        "<source>:4: collection call .find_one()",
        "<source>:4: raw collection attribute .jobs",
        "<source>:5: collection call .find()",
        "<source>:5: raw collection attribute .file_docs",
        "<source>:6: collection call .update_many()",
        "<source>:6: db[...]",
        "<source>:7: collection call .find()",
        "<source>:8: collection call .find()",
        "<source>:8: raw collection attribute .jobs",
        "<source>:9: raw collection attribute .api_keys",
    ]


def test_the_check_leaves_other_finds_and_jobs_alone() -> None:
    source = """
end = data.find(b"end_header\\n")
for job in page.jobs:
    store.get_owned_job(job.id, owner)
store.update_job_at_version("j", 3, job_fields={}, stage_fields={})
"""
    assert violations(source) == []
