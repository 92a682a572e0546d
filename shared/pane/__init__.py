"""The management pane: a browser front end over the management API, served by the same app at
`/api/portal/` (shared.pane.router). Every asset is a file of this package; nothing is loaded from
elsewhere at run time."""

from shared.pane.router import PORTAL, router

__all__ = ["PORTAL", "router"]
