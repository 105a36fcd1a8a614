"""queen-rbee: the orchestrator daemon. Takes jobs, schedules them, relays every event."""
