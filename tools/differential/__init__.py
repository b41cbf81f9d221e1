"""Differential test: the same request sequences against upstream Balsam and against this server.

Run `python -m tools.differential --help`; see tools/differential/README.md.
"""
