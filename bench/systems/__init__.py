"""One module per benchmarked system: its job definitions and its producer.

Each module runs as `python -m bench.systems.NAME COMMAND ...` in that system's virtualenv (see
`bench.producer` for the commands); the workers' command lines are in `bench.targets`.
"""
