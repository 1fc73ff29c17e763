"""Boot step 2: build the board's drivers (this module and the board's are unloaded after).

The board must match the identity's hw_kind: sensor_node or thermal_camera (sw/app/wake.py
then builds a node.Node or a camera_app.Camera on it).
"""
import sys


def board(flash, ident, cfg):
    """(board, (name, hw_kind, boot_reason, capabilities)), or exit code 2 after a one-line
    reason on stderr."""
    from .. import boards, log

    camera = ident["hw_kind"] == "thermal_camera"
    log.level = log.NAMES.index(cfg["log_level"])  # validated at boot
    name = ident["board"]
    try:
        mod = _board(boards, name, camera)
        b = mod.make(flash, ident, cfg)
        info = (name, mod.HW_KIND, mod.boot_reason(), mod.CAPABILITIES)
    except OSError as e:
        print("shorewatch: %s" % e, file=sys.stderr)
        return 2
    finally:
        boards.unload(name)
    # what only the board needed goes now, before the node's code is loaded (boot's peak)
    for k in ("pir", "battery", "sim", "log_level"):
        cfg.pop(k, None)
    for k in ("gateway", "board", "hw_kind"):
        ident.pop(k, None)
    return b, info


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
