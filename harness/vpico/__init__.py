"""The virtual Pico: the real rp2 firmware (an RPI_PICO UF2) on rp2040js, wired to the
simulated Pi. See harness/vpico/README.md."""

# The one IRQ source the emulator can't give: a skip reason, stated once per run.
NO_CORE1 = ("the vpico's emulator (rp2040js) runs core 0 only: _thread on core 1 would hang "
            "the board")
