"""Where the suite's CPU goes (issue 13 item 5): `pytest --cpu-report`.

Each test's CPU over its setup, call and teardown: this process's (time.process_time: every
thread of it, so a sandbox server's or a bridge's thread is counted with the test that made
it work) and its children's that ended meanwhile (resource.getrusage(RUSAGE_CHILDREN): the
worker processes, Chromium through Playwright's driver when it exits). A session-scoped
fixture's set-up is counted with the first test that asks for it. Not counted: the
PostgreSQL server's processes (not our children), and children still running at a test's
end. The figures ride to the xdist controller on the teardown report (`user_properties`), and
each worker's whole CPU on its `workeroutput`, so the summary also says what no test had
(start-up, imports, collection).
"""

from __future__ import annotations

import resource
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

KEY = "cpu_report"
TOP = 30


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CpuReport:
    def __init__(self, config: pytest.Config):
        self.config = config
        self._start: dict[str, tuple[float, float, float]] = {}
        self.tests: dict[str, tuple[float, float, float]] = {}  # nodeid: own, children, wall
        self.workers: dict[str, tuple[float, float]] = {}  # worker id: own, children

    # --- in the process that runs the tests (an xdist worker, or the only one) ---
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        self._start[item.nodeid] = (time.process_time(), _children_cpu(), time.monotonic())

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        outcome = yield
        if call.when != "teardown" or item.nodeid not in self._start:
            return
        own, children, wall = self._start.pop(item.nodeid)
        report = outcome.get_result()
        report.user_properties.append((KEY, (
            time.process_time() - own, _children_cpu() - children, time.monotonic() - wall)))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput[KEY] = (_own_cpu(), _children_cpu())

    # --- in the process that reports (the xdist controller, or the only one) ---
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in getattr(report, "user_properties", ()):
            if name == KEY and report.when == "teardown":
                self.tests[report.nodeid] = tuple(value)  # type: ignore[assignment]

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        figures = getattr(node, "workeroutput", {}).get(KEY)
        if figures is not None:
            self.workers[node.gateway.id] = tuple(figures)  # type: ignore[assignment]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if getattr(self.config, "workerinput", None) is not None:
            return
        if not self.workers:  # not distributed: this process is the only worker
            self.workers["main"] = (_own_cpu(), _children_cpu())
        write = terminalreporter.write_line
        terminalreporter.section("CPU per test (setup+call+teardown; --cpu-report)")
        total_own = sum(own for own, _, _ in self.tests.values())
        total_children = sum(children for _, children, _ in self.tests.values())
        write(f"{'cpu s':>7} {'own':>7} {'child':>6} {'wall s':>7}  test")
        ranked = sorted(self.tests.items(), key=lambda kv: kv[1][0] + kv[1][1], reverse=True)
        for nodeid, (own, children, wall) in ranked[:TOP]:
            write(f"{own + children:7.2f} {own:7.2f} {children:6.2f} {wall:7.2f}  {nodeid}")
        by_folder: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0])
        for nodeid, (own, children, wall) in self.tests.items():
            parts = Path(nodeid.split("::")[0]).parts
            folder = "/".join(parts[:2]) if len(parts) > 2 else parts[0]
            entry = by_folder[folder]
            entry[0] += own
            entry[1] += children
            entry[2] += wall
            entry[3] += 1
        write("")
        write(f"{'cpu s':>8} {'own':>8} {'child':>7} {'wall s':>8} {'tests':>6}  folder")
        for folder, (own, children, wall, count) in sorted(
                by_folder.items(), key=lambda kv: kv[1][0] + kv[1][1], reverse=True):
            write(f"{own + children:8.1f} {own:8.1f} {children:7.1f} {wall:8.1f} "
                  f"{int(count):6d}  {folder}")
        processes_own = sum(own for own, _ in self.workers.values())
        processes_children = sum(children for _, children in self.workers.values())
        write("")
        write(f"tests: {len(self.tests)}, CPU {total_own + total_children:.1f} s "
              f"({total_own:.1f} own + {total_children:.1f} children)")
        write(f"test processes ({len(self.workers)}): CPU {processes_own + processes_children:.1f}"
              f" s ({processes_own:.1f} own + {processes_children:.1f} children); in no test: "
              f"{processes_own + processes_children - total_own - total_children:.1f} s")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--cpu-report", action="store_true", default=False,
                     help="each test's CPU (own and children's), the top consumers and the "
                          "totals per folder (tests/harness/cpu_report.py)")


def register(config: pytest.Config) -> None:
    if config.getoption("--cpu-report"):
        config.pluginmanager.register(CpuReport(config), "cpu-report")
