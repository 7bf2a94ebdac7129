# The machine's limits, measured: what the benchmark reads kernel efficiency against.
