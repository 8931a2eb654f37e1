"""Where flag.set() is called from in a scenario (the "set source"), in one place: the
config's irq_kinds, the suite's parametrisation and the plugin's skips read these."""

IRQ_SOURCES = ("hard", "soft", "thread")  # the stimulus pin's IRQ path sets the flag
LOOP_SOURCES = ("loop", "schedule")  # the IRQ only counts; the loop / a scheduled call sets
