"""The ThreadSafeFlag suite's host side: scenarios, the analysis of what a board logged, and
the statistics behind both."""
