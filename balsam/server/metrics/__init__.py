"""Prometheus metrics (prometheus-client), in its multiprocess mode under gunicorn so that every worker counts.

- `counters`: the metrics the code updates as things happen (requests, acquired jobs, expired sessions, Redis
  publishes, pool connections in use); they live in memory-mapped files in `PROMETHEUS_MULTIPROC_DIR`, which the
  gunicorn master creates for each run (balsam.server.serving.hooks), and a scrape sums them over the workers.
- `database`: the gauges read from the database at scrape time (jobs per state per site, active sessions), from
  one aggregate query whose result each worker keeps for `BALSAM_METRICS_CACHE_SECONDS`.
- `requests`: the ASGI middleware that counts and times requests per route template and status class.
- `exposition`: the registry a scrape reads.
"""
