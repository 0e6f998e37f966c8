"""The message contract: pydantic models from which `schemas/*.json` is generated."""
