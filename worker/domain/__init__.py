"""The pure lifecycle core: no I/O, no clock. Everything here is a function of its arguments."""
