"""The node spotter's inputs for a spot stage fed without the live front end.

The live builder runs the node front end in the features stage and the context stage before
the spot stage. Benchmarks and tools that drive ``SpottingStage`` directly with aligned faces
(``bench_recognizer``, the privacy checks) may not: then the stage fills in the node residual
and the context itself, from the same aligned faces, with the same code.
"""

from __future__ import annotations

from engines.context import ContextTracker
from stream.contracts import FrameResults


class NodeRowFiller:
    """Per frame of a stage driven without the front end: ``row.nodes`` / ``row.nodes_valid``,
    and ``results.context`` when no context stage set it."""

    def __init__(self) -> None:
        from stream.face.nodes import NodeFlow

        self.flow = NodeFlow()
        self.context = ContextTracker()

    def fill(self, results: FrameResults) -> None:
        row, aligned = results.features, results.aligned
        if row is None or aligned is None:
            return
        node = self.flow.update(aligned, gap=results.gap)
        row.nodes, row.nodes_valid = node.residual, node.valid
        if results.context is None:
            seen = aligned.ok and aligned.landmarks_px is not None
            if results.gap or not seen:
                self.context.reset()
            else:
                results.context = self.context.update(aligned.landmarks_px, aligned.t_s, True)
