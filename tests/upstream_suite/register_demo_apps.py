"""Register the apps upstream's site tests load by name, as a user would: a script that syncs its classes.

`Hello` runs `echo hello {{ name }}` (a shell command); `Adder` is a Python app whose `run(x, y)` returns x + y.
The classes are defined in `__main__`, so the client serializes them by value and the launcher can rebuild them.
Usage: `python register_demo_apps.py SITE_NAME` (with BALSAM_CLIENT_PATH set, after `balsam login`).
"""

from __future__ import annotations

import sys

from balsam.api import ApplicationDefinition

SITE = sys.argv[1]


class Hello(ApplicationDefinition):
    site = SITE
    command_template = "echo hello {{ name }}"


class Adder(ApplicationDefinition):
    site = SITE

    def run(self, x: int, y: int) -> int:
        return x + y


if __name__ == "__main__":
    for app in (Hello, Adder):
        app.sync()
        assert app.__app_id__ is not None, app
        print(f"registered {app.__name__} as app {app.__app_id__}")
