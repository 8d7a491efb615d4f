"""The web dashboard: every queue, host and job at a glance, live; failed jobs retried or
deleted, waiting jobs cancelled, queues paused, by an operator who signed in with the token.

`jobpool dashboard -c jobpool.toml` serves it (server.py), and so does a master whose config
sets `[dashboard] listen` (as its child process: supervisor/dashboard_process.py). The optional
extra `jobpool[dashboard]` brings its web stack: Starlette, Jinja2 and uvicorn. Parts: the
application and its routes (app), the pages and JSON reads (pages, over reads), the POST actions
(actions), who may act (auth), and the templates and static files it ships (no CDN).
"""
