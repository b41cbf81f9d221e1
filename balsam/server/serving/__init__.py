"""What the gunicorn master loads: the worker class (`worker`), the config hooks (`hooks`), the directory of the
workers' Prometheus metrics (`multiprocess`) and the helper that reads gunicorn settings from the environment
(`environment`).

These modules import nothing else of `balsam`, so the master never loads the application: workers forked
after a HUP import the code on disk at that moment. Changes to this package itself take effect at the next
restart, like upgrades of gunicorn and uvicorn, which the master has loaded too.
"""
