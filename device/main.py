"""Shorewatch sensor node entry point.

On a board it runs from the flash root at boot. On the unix port (virtual board):
    micropython -X heapsize=64k <dir>/main.py <board_dir>
"""
import gc
import sys


def _main():
    # Make `import sw` work wherever this file lives, without MICROPYPATH.
    here = __file__.rsplit("/", 1)[0] if "/" in __file__ else ""
    if here not in sys.path:
        sys.path.insert(0, here)
    # The heap is small and never compacted, so the order matters: the runtime code first (it
    # stays, at the bottom of the heap), then the boot steps, each unloaded before the next, so
    # their space comes back as larger free regions instead of holes between long-lived objects.
    import sw.app.node  # noqa: F401

    from sw.app import boot

    loaded = boot.load(sys.argv)
    boot.unload()
    del boot
    gc.collect()
    if isinstance(loaded, int):
        return loaded  # bad provisioning: the reason is already on stderr
    from sw.app import start

    node = start.start(*loaded)
    start.unload()
    del start, loaded
    gc.collect()
    return node if isinstance(node, int) else node.main()


sys.exit(_main())
