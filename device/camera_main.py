"""Camera pipeline over a recording on the unix port (what `shorewatch detect` runs):

    micropython [-X heapsize=128k] <dir>/camera_main.py RECORDING.raw [SETTINGS.json]

See sw/app/camera_run.py for the settings and the output lines.
"""
import sys


def _main():
    here = __file__.rsplit("/", 1)[0] if "/" in __file__ else ""
    if here not in sys.path:
        sys.path.insert(0, here)
    from sw.app import camera_run

    return camera_run.main(sys.argv)


sys.exit(_main())
