"""Whether a JAX tracer belongs to the trace being built now (or to one it is nested in)."""

from __future__ import annotations

from typing import Any


def traced_here(value: Any) -> bool:
    """True for a tracer of the current trace or an enclosing one, and for a concrete array.

    A tracer kept from a trace that has ended would raise JAX's UnexpectedTracerError when
    used (JAX does not mark its traces invalid, so the chain of traces is walked instead).
    Where JAX's internals have moved, it says True: using the value then fails loudly.
    """
    trace = getattr(value, "_trace", None)
    if trace is None:
        return True
    try:
        from jax._src import core  # noqa: PLC0415 - JAX's tracing context: no public API

        current = core.trace_ctx.trace
    except (ImportError, AttributeError):  # pragma: no cover - a JAX that moved it
        return True
    while current is not None:
        if current is trace:
            return True
        current = getattr(current, "parent_trace", None)
    return False
