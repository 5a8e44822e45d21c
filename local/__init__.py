"""The local stack: a Functions host without Core Tools, simulators, TLS for loopback."""
