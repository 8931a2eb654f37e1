"""The plugin loads into every pytest run in its venv (an entry point): a session that runs
no suite test keeps pytest's own exit status. Its verdict once overrode it with 0, so a
failing harness test passed `make test` and CI."""

import pytest


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_failing_test_that_is_not_the_suite_fails_the_session(tmp_path, workers,
                                                                 plain_pytest):
    (tmp_path / "test_plain.py").write_text(
        "def test_holds():\n    assert True\n\n\ndef test_breaks():\n    assert False\n")
    run = plain_pytest(tmp_path, *workers)
    assert run.returncode == 1, run.stdout[-1500:] + run.stderr[-1500:]
    assert "1 failed, 1 passed" in run.stdout
    (tmp_path / "test_plain.py").write_text("def test_holds():\n    assert True\n")
    ok = plain_pytest(tmp_path, *workers)
    assert ok.returncode == 0, ok.stdout[-1500:] + ok.stderr[-1500:]
