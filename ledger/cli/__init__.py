"""The ``ledger`` command line (``ledger.cli.main``: the one Typer app)."""
