"""What the MicroPython runners in this directory share: the repository root (the runner's last
argument when it is one, else two directories above the runner), device/ on sys.path, and the
check counter they report as their last line, "N passed, M failed".
"""
import os
import sys


def _root():
    if len(sys.argv) > 1:
        try:
            os.stat(sys.argv[-1] + "/device/sw")
            return sys.argv[-1]
        except OSError:
            pass  # another argument (a fixture, a flash directory)
    here = sys.path[0]  # the runner's directory
    for _ in range(2):
        here = here[:here.rfind("/")]
    return here


ROOT = _root()
sys.path.insert(0, ROOT + "/device")
counts = [0, 0]  # passed, failed


def check(name, ok, detail=""):
    counts[0 if ok else 1] += 1
    if not ok:
        print("FAIL", name, detail)
