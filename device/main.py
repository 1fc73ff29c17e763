"""Shorewatch device entry point: the sensor node, or the thermal camera (identity hw_kind).

On a board it runs from the flash root at boot. On the unix port (virtual board):
    micropython -X heapsize=64k <dir>/main.py <board_dir>     (sensor node)
    micropython -X heapsize=128k <dir>/main.py <board_dir>    (thermal camera)
"""
import gc
import sys

# A heap below this runs no camera (it needs ~120 KB): a sensor node skips the camera checks.
_CAMERA_HEAP = 100 * 1024


def _main():
    # Make `import sw` work wherever this file lives, without MICROPYPATH: from this
    # directory as the working directory, by short relative names. Every module's file name
    # stays on the heap as an interned string; long temp-directory paths cost ~2 KB.
    here = __file__.rsplit("/", 1)[0] if "/" in __file__ else ""
    if here:
        import os

        if len(sys.argv) > 1 and sys.argv[1][:1] != "/":
            sys.argv[1] = os.getcwd() + "/" + sys.argv[1]  # the board directory, as given
        os.chdir(here)
        if sys.path[0] == here:
            sys.path[0] = ""
    if "" not in sys.path:
        sys.path.insert(0, "")
    board = None
    if gc.mem_free() + gc.mem_alloc() > _CAMERA_HEAP:
        # big enough for a camera: if this is one, its code goes first (sw/app/preload.py)
        from sw.app import preload

        board = preload.camera(sys.argv)
        preload.unload()
        del preload
    # The heap is small and never compacted, so the order matters. First what lives for the
    # whole run and needs no configuration: the event store (one 1 KB block), the codec, the
    # counter and the drivers every board uses, while the heap is still in one piece; then
    # the boot steps, each unloaded before the next (the board's drivers stay); then the
    # node's code, which fills the holes they leave. No boot module is resident at the peak.
    from sw.app import events, power

    store = events.Store(power.STORE_MAX)
    del events, power
    import sw.counter  # noqa: F401
    import sw.hal.clock  # noqa: F401
    import sw.hal.udp  # noqa: F401
    import sw.proto  # noqa: F401
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
            pass  # Camera.setup tries once more, and says so
        gc.collect()
    from sw.app import start

    made = start.board(*loaded)
    start.unload()
    del start
    gc.collect()
    if isinstance(made, int):
        return made
    import sw.app.node  # noqa: F401
    from sw.app import wake

    node = wake.node(*(loaded + made + (store,)))
    wake.unload()
    del wake, loaded, made, store
    gc.collect()
    # config_push stays loaded: at a push the heap may no longer have its blocks in one piece.
    # Loaded after the peak, into the room the boot code left.
    import sw.app.config_push  # noqa: F401

    return node if isinstance(node, int) else node.main()


sys.exit(_main())
