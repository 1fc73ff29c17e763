"""Boot step 2: build the board's drivers and the application (unloaded once it runs).

The identity's hw_kind picks the application: sensor_node -> node.Node, thermal_camera ->
camera_app.Camera (a Node that watches a thermal sensor instead of a PIR).
"""
import sys


def start(flash, ident, cfg, boot_count):
    """The Node (or Camera), or exit code 2 after a one-line reason on stderr."""
    from .. import boards, log
    from ..counter import CounterFileError

    camera = ident["hw_kind"] == "thermal_camera"
    log.level = log.NAMES.index(cfg["log_level"])  # validated at boot
    name = ident["board"]
    try:
        if not camera:
            from .node import Node

            # the Node before the board code: its long-lived keys go below the board
            # modules, which are dropped right after (fewer holes in a heap that is never
            # compacted)
            node = Node(flash, ident, cfg, boot_count)
            mod = _board(boards, name, camera)
        else:
            # main.py loaded the camera's code and board first (camera_app.reserve); the
            # board is checked before anything else is built
            mod = _board(boards, name, camera)
            from .camera_app import Camera

            node = Camera(flash, ident, cfg, boot_count)
        board = mod.make(flash, ident, cfg)
        info = (name, mod.HW_KIND, mod.boot_reason(), mod.CAPABILITIES)
        boards.unload(name)
        node.attach(board, info)
        return node
    except (CounterFileError, OSError) as e:
        print("shorewatch: %s" % e, file=sys.stderr)
        return 2


def _board(boards, name, camera):
    """The board module, checked against the identity's hw_kind (OSError if it is not)."""
    try:
        mod = boards.load(name)
    except ImportError as e:
        raise OSError("identity.json: board %r: %s" % (name, e))
    if mod.HW_KIND != (2 if camera else 1):
        raise OSError("identity.json: board %r is not a %s board (hw_kind)" % (
            name, "thermal_camera" if camera else "sensor_node"))
    return mod


def unload():
    """Forget this module so the garbage collector can reclaim its code."""
    import sw.app

    sys.modules.pop("sw.app.start", None)
    if hasattr(sw.app, "start"):
        delattr(sw.app, "start")
