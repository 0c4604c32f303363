"""graphc.passes: graph-to-graph optimization passes."""
