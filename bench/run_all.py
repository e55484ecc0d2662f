"""Run every benchmark in bench/ and print one table of their ratios against the targets.

    python bench/run_all.py [--quick] [--only extract_bench controller_bench ...]

Each benchmark runs in its own process, as it does alone (its output is shown as it runs), and
hands its ratios to this script (timing.publish). The table at the end says, for every ratio,
its target and whether this run met it. --quick runs each with smaller sizes (minutes instead of
an hour on a 2-core CPU; noisier ratios, and vision_bench skips its 4 GB memory test).
Exits 1 if a benchmark failed to run; a missed target is reported, not an error.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
# name: (arguments of a full run, arguments of a --quick run)
BENCHMARKS = {
    "extract_bench": ([], ["--episodes_per_worker", "2", "--raw_steps", "1500"]),
    "env_bench": ([], ["--steps", "200", "--repeats", "2"]),
    "env_equivalence": ([], ["--episodes", "5", "--max_frames", "100", "--speed_steps", "300",
                             "--results_dir", "results/bench/env_equivalence_quick"]),
    "exploration_quality": ([], ["--results_dir", "results/bench/exploration_quick", "--episodes", "8",
                                 "--test_episodes", "2", "--frames", "200", "--vae_num_epoch", "3",
                                 "--rnn_num_steps", "200"]),
    "vision_quality": ([], ["--exp_name", "vision_quality_quick", "--num_episodes", "16", "--max_frames", "300",
                            "--vae_num_epoch", "4", "--validation_frames", "500"]),
    "vision_bench": ([], ["--steps", "20", "--repeats", "3", "--skip_memory"]),
    "memory_bench": ([], ["--episodes", "4", "--steps", "10", "--repeats", "4"]),
    "controller_bench": ([], ["--steps", "300", "--repeats", "3"]),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes: minutes, noisier")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run only these benchmarks")
    args = parser.parse_args()
    names = args.only or list(BENCHMARKS)
    with tempfile.TemporaryDirectory() as folder:
        results_file = Path(folder) / "results.jsonl"
        results_file.touch()
        failed, seconds = [], {}
        for name in names:
            arguments = BENCHMARKS[name][1 if args.quick else 0]
            print(f"\n===== {name} {' '.join(arguments)} =====", flush=True)
            started = time.monotonic()
            finished = subprocess.run([sys.executable, str(BENCH / f"{name}.py"), *arguments],
                                      env={**os.environ, "BENCH_RESULTS": str(results_file)})
            seconds[name] = time.monotonic() - started
            if finished.returncode:
                failed.append(name)
        rows = [json.loads(line) for line in results_file.read_text().splitlines()]
    print(f"\n{'benchmark':<17} {'measure':<66} {'ratio':>8} {'target':>8} {'met':>4}")
    for row in rows:
        print(f"{row['bench']:<17} {row['measure']:<66} {row['value']:>8.2f} {row['target']:>8} "
              f"{'yes' if row['met'] else 'NO':>4}")
    for name in failed:
        print(f"{name:<17} {'FAILED to run (see its output above)':<66}")
    print(f"\n{sum(row['met'] for row in rows)} of {len(rows)} targets met; "
          + ", ".join(f"{name} {seconds[name]:.0f} s" for name in names))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
