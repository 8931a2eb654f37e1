"""The board under test: its serial session, the device log protocol, port profiles, recovery
and the wiring check."""
