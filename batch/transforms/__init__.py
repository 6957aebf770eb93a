"""Pure DataFrame -> DataFrame transforms of the three layers: no I/O, no session state."""
