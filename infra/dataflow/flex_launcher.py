"""Dataflow Flex Template entry point: the template's parameters arrive as --name=value flags and
go to `uvd build` unchanged (Beam options such as --project among them pass through to Beam)."""

import sys

from uvd.cli import main

if __name__ == "__main__":
    sys.exit(main(["build", *sys.argv[1:]]))
