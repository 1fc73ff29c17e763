"""Shorewatch device entry point: the sensor node, or the thermal camera (identity hw_kind).

On a board it runs from the flash root at boot. On the unix port (virtual board):
    micropython -X heapsize=64k <dir>/main.py <board_dir>     (sensor node)
    micropython -X heapsize=128k <dir>/main.py <board_dir>    (thermal camera)
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

    board = _camera(sys.argv)
    if board:
        _camera_code(board)
    from sw.app import boot

    loaded = boot.load(sys.argv)
    boot.unload()
    del boot
    gc.collect()
    if isinstance(loaded, int):
        return loaded  # bad provisioning: the reason is already on stderr
    if board and "sw.app.camera_app" in sys.modules:
        # The pipeline's frame buffers (~27 KB) right after the boot step, in what it left:
        # every module and interned name is in place by now (the names' table grows in one
        # block of up to 7 KB, which must not come after the buffers took the room).
        try:
            sys.modules["sw.app.camera_app"].reserve()
        except MemoryError:
            pass  # start.py tries once more, and says so
        gc.collect()
    from sw.app import start

    node = start.start(*loaded)
    start.unload()
    del start, loaded
    gc.collect()
    return node if isinstance(node, int) else node.main()


def _camera_code(board):
    """Load a camera's code (application, board, drivers) before the boot step, one module at
    a time with a collection in between: what loading one leaves behind is reused by the next
    instead of pushing it further up the heap."""
    try:
        for name in ("sw.app.camera_shape", "sw.app.camera_fast", "sw.app.camera_track",
                     "sw.app.camera", "sw.app.camera_app", "sw.boards." + board):
            __import__(name)
            gc.collect()
    except (ImportError, MemoryError):
        # no such board, or not the heap for a camera: the boot step says which; what was
        # loaded is dropped so that it can
        import sw.app

        for name in list(sys.modules):
            if name.startswith("sw.app.camera"):
                del sys.modules[name]
                if hasattr(sw.app, name[7:]):
                    delattr(sw.app, name[7:])
        gc.collect()


def _camera(argv):
    """The board name if this board is provisioned as a thermal camera, else None. It only
    decides what to load first: the boot step reads and checks identity.json for real."""
    import json

    from sw import store

    try:
        with open(store.path(argv[1] if len(argv) > 1 else "", "identity.json")) as f:
            ident = json.load(f)
        board = ident.get("board", "virtual")
        # a module name (boot.py checks it the same way): nothing else reaches an import
        if ident.get("hw_kind") == "thermal_camera" and isinstance(board, str) and board and \
                all(c.isalpha() or c.isdigit() or c == "_" for c in board):
            return board
    except (OSError, ValueError, AttributeError):
        pass  # the boot step says what is wrong
    return None


sys.exit(_main())
