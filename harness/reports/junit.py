"""junit.xml as the run's verdict says: only tests that ran (pytest leaves a nameless
`<testcase/>` for the test a signal cut short), the verdict as a suite property, and why
the bench could not measure (a suite that did not collect) and an interruption each as a
property and a system-err line, so a CI page of green test cases can't read as a pass when
the run was cut short or measured nothing."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from harness.reports.results import write_atomic


def tidy_junit(path: Path, verdict: str, interrupted: str | None = None,
               cause: str = "") -> None:
    """Rewrite junit.xml in place (atomically); a missing file stays missing. cause: why
    the run could not measure (results.json's bench_fault), said first for an `error`."""
    if not path.exists():
        return
    root = ET.parse(path).getroot()
    for suite in root.iter("testsuite"):
        for case in suite.findall("testcase"):
            if not case.get("name"):
                suite.remove(case)
        suite.set("tests", str(len(suite.findall("testcase"))))
        props = suite.find("properties")
        if props is None:
            props = ET.Element("properties")
            suite.insert(0, props)
        _set(props, "tsfrig.verdict", verdict)
        for old in suite.findall("system-err"):
            if old.text and old.text.startswith(("tsfrig: interrupted", "tsfrig: verdict")):
                suite.remove(old)
        if cause:
            _set(props, "tsfrig.cause", cause)
            ET.SubElement(suite, "system-err").text = (
                f"tsfrig: verdict {verdict}: {cause}; not a firmware verdict")
        if interrupted:
            _set(props, "tsfrig.interrupted", interrupted)
            ET.SubElement(suite, "system-err").text = (
                f"tsfrig: interrupted by {interrupted}: not a pass (the tests listed are the "
                "ones that finished)")
    write_atomic(path, '<?xml version="1.0" encoding="utf-8"?>'
                 + ET.tostring(root, encoding="unicode"))


def _set(props: ET.Element, name: str, value: str) -> None:
    for prop in props.findall("property"):
        if prop.get("name") == name:
            prop.set("value", value)
            return
    ET.SubElement(props, "property", name=name, value=value)
