"""Boot step 2: build the board's drivers (this module and the board's are unloaded after)."""
import sys


def board(flash, ident, cfg):
    """(board, (name, hw_kind, boot_reason, capabilities)), or exit code 2 after a one-line
    reason on stderr."""
    from .. import boards, log

    log.level = log.NAMES.index(cfg["log_level"])  # validated at boot
    name = ident["board"]
    try:
        try:
            mod = boards.load(name)
        except ImportError as e:
            raise OSError("identity.json: board %r: %s" % (name, e))
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


def unload():
    """Forget this module so the garbage collector can reclaim its code."""
    import sw.app

    sys.modules.pop("sw.app.start", None)
    if hasattr(sw.app, "start"):
        delattr(sw.app, "start")
