"""Command line: ``python -m dwconv info`` (the configuration) and ``python -m dwconv bench``."""
import argparse
import sys


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m dwconv",
        description="dwconv's command line: each command's --help lists its options.",
    )
    commands = parser.add_subparsers(dest="command", metavar="command", required=True)
    commands.add_parser("info", help="print the version, instruction-set level, threads and build flags")
    commands.add_parser("bench", add_help=False,
                        help="time dwconv against PyTorch, ONNX Runtime and TensorFlow")
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = _parser()
    if not argv:
        parser.print_help(sys.stderr)
        return 2
    if argv[0] == "bench":
        from dwconv import bench

        return bench.main(argv[1:])  # the bench parses its own options, --help included
    parser.parse_args(argv)  # -h, info, or an error that names what it does not know
    from dwconv import show_config

    show_config()
    return 0


if __name__ == "__main__":
    sys.exit(main())
