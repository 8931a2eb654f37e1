"""The suite's tests and the scenario each one runs: plain data that the config (known_issues
keys), the plugin and the reports read without importing the scenarios' host code."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    """One clause of the contract as the suite runs it: the name results.json and compare
    use, and the device-side scenario (tsf_watcher.SCENARIOS) that runs it."""

    name: str
    device: str


# test function -> its scenario: the one place a test is tied to what it runs and reports
SUITE: dict[str, Scenario] = {
    "test_wake": Scenario("wake", "watch"),
    "test_auto_reset": Scenario("auto_reset", "watch"),
    "test_coalesce_no_lost_wakeup": Scenario("coalesce", "watch"),
    "test_pending_set_is_remembered": Scenario("pending_set", "early_sets"),
    "test_clear_discards_pending_set": Scenario("clear", "early_sets"),
    "test_one_waiter_fanout": Scenario("fanout", "fanout"),
    "test_second_waiter_behaviour": Scenario("second_waiter", "second_waiter"),
    "test_set_from_loop_and_schedule": Scenario("set_source", "watch"),
    "test_cancellation": Scenario("cancellation", "cancel"),
    "test_stress": Scenario("stress", "watch"),
    "test_latency": Scenario("latency", "watch"),
}
