"""``python -m bench``: every benchmark on the embedded default, in a few minutes."""

from __future__ import annotations

import argparse
import logging

from . import ingest, micro


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run, noisier)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    micro.main(n=500 if args.quick else 2000)
    rounds = 2 if args.quick else 5
    ingest.main(rounds=rounds, per_round=300 if args.quick else 1000)
    ingest.main(rounds=rounds, per_round=300 if args.quick else 1000, synchronous="NORMAL")


if __name__ == "__main__":
    main()
