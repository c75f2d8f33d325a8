"""Performance harness: `python -m bench [--quick]`, or one benchmark as `python -m bench.<name>`."""
