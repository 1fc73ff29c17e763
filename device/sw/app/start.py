"""Boot step 2: build the board's drivers and the Node (unloaded once the node runs)."""
import sys


def start(flash, ident, cfg, boot_count):
    """The Node, or exit code 2 after a one-line reason on stderr."""
    from .. import boards, log
    from ..counter import CounterFileError
    from .node import Node

    log.level = log.NAMES.index(cfg["log_level"])  # validated at boot
    name = ident["board"]
    try:
        # Node before the board code: its long-lived keys go below the board modules, which
        # are dropped right after (fewer holes in a heap that is never compacted).
        node = Node(flash, ident, cfg, boot_count)
        try:
            mod = boards.load(name)
        except ImportError as e:
            raise OSError("identity.json: board %r: %s" % (name, e))
        board = mod.make(flash, ident, cfg)
        info = (name, mod.HW_KIND, mod.boot_reason(), mod.CAPABILITIES)
        boards.unload(name)
        node.attach(board, info)
        return node
    except (CounterFileError, OSError) as e:
        print("shorewatch: %s" % e, file=sys.stderr)
        return 2


def unload():
    """Forget this module so the garbage collector can reclaim its code."""
    import sw.app

    sys.modules.pop("sw.app.start", None)
    if hasattr(sw.app, "start"):
        delattr(sw.app, "start")
