"""rig_config.yaml texts the config tests start from: a module, not fixtures, because the
tests build module-level configs and parametrize lists from them at import time."""

SIM = """\
version: 1
targets:
  - name: sim
    kind: sim
    wiring:
      stimulus: {pi_gpio: 17, board_pin: 2}
      ack: {board_pin: 3, pi_gpio: 27}
"""

SERIAL = """\
  - name: {name}
    kind: serial
    serial: {{port: {port}}}
    pigpio: {{host: bench-pi, port: 8888}}
    wiring:
      stimulus: {{pi_gpio: {stim}, board_pin: GP2}}
      ack: {{board_pin: GP3, pi_gpio: {ack}}}
"""
