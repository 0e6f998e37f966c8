"""The engine: the loop, the inbound and outbound sides, the sweep and periodic work."""
