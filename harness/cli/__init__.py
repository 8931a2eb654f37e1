"""`tsfrig` and its subcommands (run, sim, report, compare, trend, bisect, doctor)."""
