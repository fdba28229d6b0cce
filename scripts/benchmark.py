"""Measure brainseg against its limits and the usual alternatives; write docs/benchmarks.{md,json}.

    python scripts/benchmark.py                          # everything (about 5 minutes on 2 idle cores)
    python scripts/benchmark.py --only preprocessing inference
    python scripts/benchmark.py --volume-checkpoint CKPT # a slice-mode checkpoint for the 3-D figure
    python scripts/benchmark.py --tiny --output /tmp/b   # every code path in seconds (figures meaningless)
    python scripts/benchmark.py --render docs/benchmarks.json  # tables and notes again, no measuring

Run it on an otherwise idle machine: the load, and the cores other processes used, are written
beside the figures.
"""

import argparse
import logging
from pathlib import Path


def main() -> None:
    # Imports stay inside: preprocessing worker processes re-import this file and need none of them.
    from benchmarks import report
    from benchmarks.suite import SECTIONS, Sizes, run_benchmarks

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="sections to run")
    parser.add_argument("--output", default="docs", help="folder for benchmarks.md and benchmarks.json")
    parser.add_argument("--workdir", default="outputs/benchmark", help="volume, datasets and runs (kept between runs)")
    parser.add_argument("--volume-checkpoint", help="slice-mode checkpoint for the 3-D figure (default: untrained network)")
    parser.add_argument("--dataset", help="train on this dataset folder instead of the default synthetic data")
    parser.add_argument("--render", metavar="JSON", help="only write the tables again from a benchmarks.json")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: checks the code paths, not the speed")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.render:
        results = report.read(Path(args.render))
    else:
        sizes = Sizes.tiny() if args.tiny else Sizes()
        results = run_benchmarks(Path(args.workdir), sizes, tuple(args.only), args.volume_checkpoint, args.dataset)
    json_path, md_path = report.write(results, Path(args.output))
    print(md_path.read_text())
    print(f"written: {md_path}, {json_path}")


if __name__ == "__main__":
    main()
