"""Boot step 0, for a heap big enough for a camera: if the board is provisioned as a thermal
camera, load its code (application, board, drivers) before anything else. main.py calls it and
unloads it; a sensor node's small heap never loads this module.

It only decides what to load first: the boot step reads and checks identity.json for real.
"""
import gc
import sys


def camera(argv):
    """The board name if this is a camera (its code now loaded), else None."""
    board = _camera_board(argv)
    if board:
        _load(board)
    return board


def unload():
    """Forget this module so the garbage collector can reclaim its code."""
    import sw.app

    sys.modules.pop("sw.app.preload", None)
    if hasattr(sw.app, "preload"):
        delattr(sw.app, "preload")


def _load(board):
    """One module at a time with a collection in between: what loading one leaves behind is
    reused by the next instead of pushing it further up the heap."""
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


def _camera_board(argv):
    import json

    from .. import store

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
