"""pytest hooks: each test's HTTP exchanges are attached to its failure
report, and reads that needed waiting are listed at the end."""

import pytest

import helpers


@pytest.fixture(autouse=True)
def _fresh_http_log():
    helpers.HTTP_LOG.clear()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and helpers.HTTP_LOG:
        report.sections.append(("HTTP exchanges of this test", helpers.format_http_log()))


def pytest_terminal_summary(terminalreporter):
    sent = helpers.REQUESTS_SENT
    if sent:
        by_route = ", ".join(f"{route} {n}" for route, n in sorted(sent.items()))
        terminalreporter.write_line(f"{sum(sent.values())} HTTP requests: {by_route}")
    if helpers.LAG_NOTES:
        terminalreporter.section("reads that were not consistent at once")
        for note in helpers.LAG_NOTES:
            terminalreporter.write_line(note)
