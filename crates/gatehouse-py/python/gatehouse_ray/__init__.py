"""gatehouse on Ray (preview).

The native module ``gatehouse_ray._native`` (Rust, PyO3, abi3) exposes gatehouse-core over
Arrow: ``Store`` (opened from arguments, environment and gatehouse.toml like the CLI),
``list_objects``, ``object_digest`` and ``digest_batch`` (a map kernel over an Arrow batch),
and ``Build``: ``gatehouse build`` cut into the steps a driver and its workers run
(``prepare``, ``map(indices)``, ``band_rows(indices, parts)``, ``judge(rows, parts)``,
``finish(judged)``). ``python -m gatehouse_ray`` is the Ray driver.
"""

from ._native import (
    Build,
    ConfigError,
    GatehouseError,
    Store,
    StoreError,
    digest_batch,
    list_objects,
    object_digest,
    version,
)

__all__ = [
    "Build",
    "ConfigError",
    "GatehouseError",
    "Store",
    "StoreError",
    "digest_batch",
    "list_objects",
    "object_digest",
    "version",
]
__version__ = version()
