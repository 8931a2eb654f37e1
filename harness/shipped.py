"""The files tsfrig ships beside its code: the device scripts it uploads to a board, the
suite it runs and the rig config a new bench starts from.

In a clone, harness/_shipped/ holds links to the repo's own device_scripts/, tests/hil/ and
rig_config.yaml; a wheel carries copies of them there. Either way they are found at one place,
and resolving the links keeps a clone's paths (and so the suite's test ids) its own.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent / "_shipped"

DEVICE_SCRIPTS = (_HERE / "device_scripts").resolve()
SUITE = (_HERE / "suite").resolve()
STARTING_CONFIG = (_HERE / "rig_config.yaml").resolve()
