"""One module per benchmarked system: its job definitions and its producer.

Each module runs as `python -m benchmarks.systems.NAME COMMAND ...` in that system's virtualenv (see
`benchmarks.producer` for the commands); the workers' command lines are in `benchmarks.targets`.
"""
