"""Tiny leveled logger: one `print` per line, `<L> <tag>: <message>` (e.g. `I app: booted`).

Everything goes to stdout so a test (or a serial console) reads one ordered stream. A log line
starts with one level letter and a space, so it never looks like the machine-readable
`EVENT {...}` / `TELEMETRY {...}` records of the application.
"""
NAMES = ("debug", "info", "warning", "error")

level = 1  # index into NAMES; set once at boot from config log_level


def _out(lvl, tag, msg, args):
    # format only lines that are printed: a disabled debug call costs a call and a comparison
    if lvl >= level:
        print("DIWE"[lvl], tag + ":", msg % args if args else msg)


def debug(tag, msg, *args):
    _out(0, tag, msg, args)


def info(tag, msg, *args):
    _out(1, tag, msg, args)


def warning(tag, msg, *args):
    _out(2, tag, msg, args)


def error(tag, msg, *args):
    _out(3, tag, msg, args)
