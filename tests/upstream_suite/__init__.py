"""Our fixtures for running the published client's own test files (from its PyPI sdist) against our server.

Nothing here is upstream code. `tests/test_upstream_suites.py` copies the sdist's `tests/` tree into a temporary
directory, drops `conftest_upstream.py` in as its `tests/conftest.py`, and runs pytest inside the client's
virtualenv; these modules are imported there, never by our own test run.
"""
