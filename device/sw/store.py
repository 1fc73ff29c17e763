"""Small files in flash, replaced atomically. The flash root is `/` on a board and the board
directory on the unix port."""
import os


def path(flash, name):
    """Join the flash root and a file name (there is no os.path on MicroPython)."""
    return flash.rstrip("/") + "/" + name if flash else name


def write_atomic(fname, data, dump=None):
    """Write a temporary file, then rename it over the old one; dump(data, f) writes data if
    given (json.dump streams: no copy of the whole document in the heap).

    rename is atomic on littlefs and POSIX, so a power cut leaves the old or the new content,
    never half a file.
    """
    tmp = fname + ".tmp"
    with open(tmp, "w") as f:
        if dump is None:
            f.write(data)
        else:
            dump(data, f)
    try:
        os.rename(tmp, fname)
    except OSError:
        # FAT cannot rename over an existing file. A cut between remove and rename loses the
        # file; only FAT boards pay that, and the files written here are re-creatable.
        os.remove(fname)
        os.rename(tmp, fname)
