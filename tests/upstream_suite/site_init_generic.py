"""`balsam site init` with its one interactive question answered: the generic platform.

The command asks for the system in a terminal menu (inquirer), which needs a TTY. This runs the real command
(`balsam.cmdline.main`, the `balsam` entry point) in-process with that menu answered by the default config whose
scheduler is the local process scheduler ("MacOS/Linux (Local)": local processes, MPICH's mpiexec), which is what
upstream's tests call the generic platform. Everything else (site registration, settings.yml, directories) is
the command's own code. Usage: `python site_init_generic.py site init -n NAME PATH`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import inquirer
from balsam.cmdline import main
from balsam.config import site_builder


def generic_platform_dir() -> Path:
    configs = site_builder.load_default_configs()
    (path,) = (path for path, conf in configs.items() if conf.scheduler_class.endswith(".LocalProcessScheduler"))
    return path


def answer_menu(questions: list[Any], *args: Any, **kwargs: Any) -> dict[str, Path]:
    (question,) = questions
    choices = [getattr(choice, "value", choice) for choice in question.choices]  # inquirer's TaggedValue
    assert generic_platform_dir() in choices, choices
    return {question.name: generic_platform_dir()}


if __name__ == "__main__":
    inquirer.prompt = answer_menu
    sys.exit(main())
