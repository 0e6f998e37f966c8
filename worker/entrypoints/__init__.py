"""Consumer loop, command line and demo."""
