"""Global recording state, shared by Variable, the primitives and the tapes.

Module-level lists for speed: the per-op hot path only tests them for truth.
"""

# Tapes currently recording, innermost last.
active_tapes: list = []
# Tracers of compiled Functions currently tracing, innermost last: they record every
# primitive application with a Variable argument, differentiable or not.
tracers: list = []
