"""Load the native CEL runtime before the native Rego runtime.

regopy's librego_shared.so exports global `operator new`/`operator delete`; when it is loaded
first, later cel-expr-python calls free memory with the wrong allocator and the process aborts
(`munmap_chunk(): invalid pointer`). Loading cel-expr-python first binds its symbols to the
standard allocator. `polgen.engines` imports this module before any engine.

The price of this order: rego-cpp then never returns memory freed during a query, so the
Gatekeeper engine runs Rego in worker processes that import only regopy
(`gatekeeper_rego_worker.py`).
"""

from __future__ import annotations

import contextlib

# Without the engines extra, a command that needs an engine says what to install (`cli_common`).
with contextlib.suppress(ImportError):
    import cel_expr_python.cel  # noqa: F401
