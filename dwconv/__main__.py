"""Command line: ``python -m dwconv info`` (the configuration) and ``python -m dwconv bench``."""
import sys


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    if command == "info":
        from dwconv import show_config

        show_config()
        return 0
    if command == "bench":
        from dwconv import bench

        return bench.main(rest)
    print("usage: python -m dwconv {info,bench} [bench options; see python -m dwconv bench --help]",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
