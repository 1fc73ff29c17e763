"""Recording-replay fakes at the bus seam, for driver tests under MicroPython.

A recording is a text file, one bus operation per line, in the order the driver must do them
(`#` starts a comment, hex may contain spaces):

    I2C.W  <addr> <mem> <hex>   driver writes these bytes to register mem (2 hex digits: 8-bit
                                register address, 4: 16-bit)
    I2C.R  <addr> <mem> <hex>   driver reads register mem; the chip answers these bytes
    I2C.NACK <addr> <mem>       the next transfer to mem is not acknowledged (OSError)
    UART.TX <hex>               driver writes exactly these bytes
    UART.RX <hex>               bytes the device sends: one readinto() returns at most this chunk
    UART.IDLE                   one readinto() that finds nothing (None)
    ADC.UV <int> / ADC.U16 <int>  one sample
    PIN <name> <0|1>            driver sets an output

Anything else the driver does, or an operation left over at the end, is a ReplayError naming
the recording line. UART reads that find the next operation not to be UART.RX return None (the
device has not answered yet), which is how "write a command, then the ACK arrives" is recorded.
"""
from binascii import hexlify, unhexlify


class ReplayError(Exception):
    pass


def _h(b):
    return hexlify(bytes(b)).decode()


def _hex(parts):
    return unhexlify("".join(parts))


class Replay:
    def __init__(self, ops):
        self.ops = ops  # [kind, lineno, args...]
        self.i = 0

    @classmethod
    def load(cls, path):
        ops = []
        with open(path) as f:  # noqa: PTH123 - MicroPython has no pathlib
            for n, text in enumerate(f, 1):
                words = text.split("#", 1)[0].split()
                if words:
                    ops.append([words[0], n] + words[1:])  # noqa: RUF005 - no [*x] on MicroPython
        return cls(ops)

    def peek(self):
        return self.ops[self.i] if self.i < len(self.ops) else None

    def take(self, kinds, what):
        op = self.peek()
        if op is None:
            raise ReplayError(f"driver did {what} after the end of the recording")
        if op[0] not in kinds:
            raise ReplayError(f"line {op[1]}: recording has {op[0]}, driver did {what}")
        self.i += 1
        return op

    def done(self):
        """None if every operation was replayed, else what is left."""
        op = self.peek()
        return None if op is None else f"line {op[1]}: {op[0]} never happened"


class ReplayI2C:
    """machine.I2C surface used by the drivers: *_mem transfers with addrsize 8 or 16."""

    def __init__(self, replay):
        self._r = replay

    def _op(self, kind, addr, mem, addrsize):
        what = f"{kind} {addr:02x} {mem:04x}" if addrsize == 16 else f"{kind} {addr:02x} {mem:02x}"
        op = self._r.take((kind, "I2C.NACK"), what)
        if int(op[2], 16) != addr or int(op[3], 16) != mem or len(op[3]) * 4 != addrsize:
            raise ReplayError(f"line {op[1]}: recording has {op[0]} {op[2]} {op[3]}, "
                              f"driver did {what}")
        if op[0] == "I2C.NACK":
            raise OSError(19)  # ENODEV: what the ports raise on a missing ACK
        return op

    def readfrom_mem_into(self, addr, mem, buf, addrsize=8):
        data = _hex(self._op("I2C.R", addr, mem, addrsize)[4:])
        if len(data) != len(buf):
            raise ReplayError(f"read of {len(buf)} bytes at {mem:x}, recording has {len(data)}")
        for i in range(len(data)):
            buf[i] = data[i]

    def readfrom_mem(self, addr, mem, n, addrsize=8):
        buf = bytearray(n)
        self.readfrom_mem_into(addr, mem, buf, addrsize)
        return bytes(buf)

    def writeto_mem(self, addr, mem, buf, addrsize=8):
        op = self._op("I2C.W", addr, mem, addrsize)
        if _hex(op[4:]) != bytes(buf):
            raise ReplayError(f"line {op[1]}: write {_h(buf)} to {mem:x}, recording has "
                              f"{''.join(op[4:])}")


class ReplayUart:
    """machine.UART surface with timeout=0: write, readinto, any."""

    def __init__(self, replay):
        self._r = replay
        self._pending = b""

    def _fill(self):
        if not self._pending:
            op = self._r.peek()
            if op is not None and op[0] == "UART.RX":
                self._r.take(("UART.RX",), "read")
                self._pending = _hex(op[2:])

    def write(self, buf):
        op = self._r.take(("UART.TX",), "UART write " + _h(buf))
        if _hex(op[2:]) != bytes(buf):
            raise ReplayError(f"line {op[1]}: driver wrote {_h(buf)}")
        return len(buf)

    def any(self):
        self._fill()
        return len(self._pending)

    def readinto(self, buf):
        if not self._pending:
            op = self._r.peek()
            if op is not None and op[0] == "UART.IDLE":
                self._r.take(("UART.IDLE",), "read")
                return None
        self._fill()
        k = min(len(buf), len(self._pending))
        if not k:
            return None
        for i in range(k):
            buf[i] = self._pending[i]
        self._pending = self._pending[k:]
        return k


class ReplayAdc:
    """machine.ADC with read_uv (ESP32 family)."""

    def __init__(self, replay):
        self._r = replay

    def read_uv(self):
        return int(self._r.take(("ADC.UV",), "ADC.read_uv")[2])


class ReplayAdcU16:
    """machine.ADC with only read_u16 (RP2)."""

    def __init__(self, replay):
        self._r = replay

    def read_u16(self):
        return int(self._r.take(("ADC.U16",), "ADC.read_u16")[2])


class ReplayPin:
    def __init__(self, replay, name):
        self._r = replay
        self.name = name

    def value(self, v=None):
        if v is None:
            raise ReplayError(f"pin {self.name} read: only outputs are recorded")
        what = f"PIN {self.name} {v}"
        op = self._r.take(("PIN",), what)
        if op[2] != self.name or int(op[3]) != (1 if v else 0):
            raise ReplayError(f"line {op[1]}: recording has PIN {op[2]} {op[3]}, "
                              f"driver did {what}")
