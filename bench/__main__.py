"""``python -m bench``: every benchmark on the embedded default, in a few minutes."""

from __future__ import annotations

import argparse
import logging
import os

from . import attention, audit, ingest, micro, operations, timers


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run, noisier)")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("ONBOARDING_FSM_TEST_POSTGRES_URL"),
        help="PostgreSQL URL for the PostgreSQL benchmarks (default: $ONBOARDING_FSM_TEST_POSTGRES_URL)",
    )
    parser.add_argument("--sweep-sizes", default="100000,1000000", help="account counts for the sweep benchmark")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    micro.main(n=500 if args.quick else 2000)
    rounds = 2 if args.quick else 5
    ingest.main(rounds=rounds, per_round=300 if args.quick else 1000)
    ingest.main(rounds=rounds, per_round=300 if args.quick else 1000, synchronous="NORMAL")
    timers.main(count=1_000 if args.quick else 10_000, baseline=500 if args.quick else 2_000)
    from . import http

    http.main(quick=args.quick)
    audit.main(accounts=10_000 if args.quick else 100_000, rounds=3)
    if args.quick:
        operations.main(messages=2_000, accounts=200, calls=500, rounds=2)
    else:
        operations.main()
    attention.main(10_000 if args.quick else 100_000)
    if not args.postgres:
        print("\nPostgreSQL benchmarks skipped: pass --postgres URL or set ONBOARDING_FSM_TEST_POSTGRES_URL")
        return
    from . import pg

    pg.ingestion(args.postgres, rounds=rounds, per_round=200 if args.quick else 600)
    pg.scale_out(args.postgres, events_per_process=400 if args.quick else 1500)
    sizes = (10_000, 100_000) if args.quick else tuple(int(s) for s in args.sweep_sizes.split(","))
    pg.sweep(args.postgres, sizes=sizes, fire=500 if args.quick else 2000)
    attention.main(10_000 if args.quick else 100_000, sqlite=False, postgres=args.postgres)


if __name__ == "__main__":
    main()
