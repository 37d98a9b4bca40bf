"""Microsoft 365 through Microsoft Graph v1.0: HTTP layer, $batch, delta streams, GraphMailbox."""

from scc_desktop.mailbox.graph.http import GraphError, GraphHttp
from scc_desktop.mailbox.graph.mailbox import GraphMailbox

__all__ = ["GraphError", "GraphHttp", "GraphMailbox"]
