"""Run the dwconv benchmark from a source checkout; same options as ``python -m dwconv bench``."""
import sys

from dwconv import bench

sys.exit(bench.main(sys.argv[1:]))
