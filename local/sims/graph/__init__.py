"""The Microsoft Graph (``/v1.0``) simulator: see ``app.GraphSim``."""

from local.sims.graph.app import GraphSim
from local.sims.graph.settings import GraphSettings

__all__ = ["GraphSettings", "GraphSim"]
