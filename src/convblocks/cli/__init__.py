"""The ``convblocks`` command line: one module per command."""
