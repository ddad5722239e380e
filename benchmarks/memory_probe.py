"""Peak anonymous memory of one ``latentzoo`` CLI command, run in this process.

    python benchmarks/memory_probe.py fit vae big.npy --out runs/vae ...

A thread samples ``RssAnon`` in /proc/self/status every millisecond while the command runs
and prints ``PEAK <bytes above the level after the imports> BASE <that level> CODE <exit code>``;
a tiny fit first imports what training imports lazily, so the peak is the command's own.
Used by benchmarks/bench_memory.py and tests/test_large_files.py (Linux only).
"""
import sys
import threading
import time

import numpy

import latentzoo
import latentzoo.cli


def anon() -> int:
    """RssAnon of this process in bytes."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no RssAnon in /proc/self/status (Linux only)")


def main(argv: list[str]) -> int:
    latentzoo.VAE(2, hidden=(4,), max_epochs=1, verbose=0).fit(numpy.random.rand(64, 3))  # lazy imports
    base = anon()
    peak = [base]
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            peak[0] = max(peak[0], anon())
            time.sleep(0.001)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    code = latentzoo.cli.main(argv)
    stop.set()
    t.join()
    peak[0] = max(peak[0], anon())
    print("PEAK", peak[0] - base, "BASE", base, "CODE", code)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
