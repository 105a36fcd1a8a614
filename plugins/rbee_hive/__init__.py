"""rbee-hive: one per machine. Knows the machine's devices and models; spawns workers."""
