"""The CLI's commands (`worker`) in processes forked from a fork server that has imported
the package once (issue 13 item 5): each `python -m whatsapp_helpdesk.cli worker` imported
it all again, ~1.5 s of CPU per process. Each is still an OS process of its own (killable
with SIGKILL, its exit status the command's), seeing only the environment it is given, and
never a fork of the test process (its threads, sockets and pooled connections)."""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing import forkserver
from multiprocessing.process import BaseProcess

# What a worker command imports, imported once by the fork server (pytest: the test
# process's main module, which each child would import again otherwise).
PRELOAD = ["pytest", "whatsapp_helpdesk.cli", "whatsapp_helpdesk.bootstrap",
           "whatsapp_helpdesk.worker.runner"]


def _run_cli(argv: list[str], env: dict[str, str]) -> None:
    """A child's target: as `python -m whatsapp_helpdesk.cli *argv` with `env` as its whole
    environment, output discarded; its exit status is the command's."""
    os.environ.clear()
    os.environ.update(env)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    from whatsapp_helpdesk.cli import main

    sys.exit(main(argv))


@contextmanager
def cli_processes() -> Iterator[Callable[[list[str], dict[str, str]], BaseProcess]]:
    """`start(argv, env)` starts a CLI process; at the end, any still running is killed and
    the fork server stopped and reaped here, with what its children spent (RUSAGE_CHILDREN:
    the test's CPU in `--cpu-report`)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    started: list[BaseProcess] = []

    def start(argv: list[str], env: dict[str, str]) -> BaseProcess:
        process = context.Process(target=_run_cli, args=(argv, env))
        process.start()
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            if process.is_alive():
                process.kill()
            process.join()
        forkserver._forkserver._stop()  # type: ignore[attr-defined]  # the stdlib tests' way
