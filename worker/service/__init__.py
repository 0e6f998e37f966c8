"""The thin shell around the core: intake, one transaction per message or timer, the relay."""
