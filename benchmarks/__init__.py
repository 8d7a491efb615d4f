"""jobpool's benchmark against raw redis-py and its peers (RQ, Dramatiq, Celery, Huey, arq).

`scripts/bench` runs it; docs/benchmarks.md explains the method and holds the last results.
The modules under `benchmarks.systems` are imported by processes of other virtualenvs (the
peers'), so they and `benchmarks.body` import nothing but the standard library, redis-py and their
own system.
"""
