"""Endurance and scale-out checks of the running service: a Redis outage under load
(`outage`), a soak at full load with resource sampling (`soak`), and executions/s against
the number of workers (`scaling`). Each drives the real service over HTTP."""
