"""The HTTP side of ``acd serve``: server, auth, pages and supervisor API, metrics, dashboard."""
