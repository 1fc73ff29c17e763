"""Melexis MLX90640 32x24 thermal array on I2C: EEPROM calibration, To per pixel per subpage.

Written from the equations of the MLX90640 datasheet (section 11, "Calculating object
temperature"). Addresses are 16 bits, data 16-bit big-endian words:

    0x0400..0x06FF  pixel RAM, 768 words, row-major (row 0 = top), signed
    0x0700..0x073F  auxiliary RAM: V_BE 0x0700, CP subpage 0 0x0708, GAIN 0x070A,
                    V_PTAT 0x0720, CP subpage 1 0x0728, VDD 0x072A
    0x2400..0x273F  EEPROM: calibration 0x2410..0x243F, one word per pixel from 0x2440
                    (offset bits 15..10, alpha 9..4, Kta 3..1, outlier flag 0)
    0x8000          status: bit 3 new data in RAM, bits 2..0 subpage just measured
    0x800D          control: bits 9..7 refresh rate, 11..10 ADC resolution, 12 chess mode

The sensor measures half the pixels per "subpage" in a chess pattern (pixel (row, col) belongs
to subpage (row + col) & 1); a full frame takes two subpages, so a "2 Hz" refresh rate gives
1 full frame per second. Only chess mode is supported: it is the mode devices are calibrated
in, and begin() selects it (interleaved mode would need the IL_CHESS corrections, which are
extracted but not applied).

Integers where the datasheet allows them: the offset and alpha numerators are sums of shifted
EEPROM fields, kept as ints (per row, per column, per pixel on the fly), and the result is an
int16 array of centi-degrees Celsius. Floats are unavoidable for the rest: gain, Ta/Vdd
compensation and the radiometric fourth-root equation span ~1e-8 (alpha) to ~1e10 (K^4), far
beyond a 30-bit small int (bigger ints allocate). Single precision (ESP32 ports) keeps ~7
digits: at 1e10 K^4 that is ~1e-5 K of To, by estimate (the unix port tested here is double).

Buffers are preallocated: 832 words of EEPROM and 832 of frame RAM, the centi-degree frame and
56-entry per-row/per-column tables; a subpage leaves no allocation behind (each float op makes
short-lived garbage on ports that box floats). A subpage is 384 pixels of plain bytecode:
0.8 ms on the unix port (x86-64); expect tens of ms to ~150 ms on an ESP32-S3 (not measured),
enough for <= 4 Hz.
"""
from array import array
from math import sqrt
from time import ticks_diff, ticks_ms

from micropython import const

_REG_STATUS = const(0x8000)
_REG_CTRL = const(0x800D)
_EEPROM = const(0x2400)
_RAM = const(0x0400)
_WORDS = const(832)  # EEPROM 0x2400..0x273F and RAM 0x0400..0x073F are both 832 words
_PIXELS = const(768)
_ROWS = const(24)
_COLS = const(32)

_ST_NEW = const(0x0008)
_ST_OVERWRITE = const(0x0010)  # kept as configured when new-data is cleared
_CTRL_CHESS = const(0x1000)
_CTRL_RATE = const(0x0380)
_READ_TRIES = const(3)  # a subpage landing while we read the RAM means a torn read: again

# RAM word indices (address - 0x0400)
_I_VBE = const(768)
_I_CP0 = const(776)
_I_GAIN = const(778)
_I_PTAT = const(800)
_I_CP1 = const(808)
_I_VDD = const(810)

NOT_MEASURED = const(-32768)
# refresh rate codes of control bits 9..7, in tenths of Hz (subpages per second)
RATES_X10 = (5, 10, 20, 40, 80, 160, 320, 640)


class Mlx90640:
    """begin() once, then poll() at about the refresh rate (due_ms() says when); `cc` holds
    the latest frame."""

    ended = False  # HAL thermo role: a real sensor never runs out of frames (a recording does)

    def __init__(self, i2c, addr=0x33, emissivity=1.0, tr_offset=-8.0):
        """emissivity: of the scene, user-defined (not in the EEPROM); tr_offset: reflected
        temperature relative to Ta, K (the datasheet's default for an open sensor is -8)."""
        self._i2c = i2c
        self._addr = addr
        self._ee = bytearray(2 * _WORDS)
        self._ram = bytearray(2 * _WORDS)
        self._w = bytearray(2)
        self.cc = array("h", bytes(2 * _PIXELS))  # row-major 24 x 32, centi-degrees C
        for i in range(_PIXELS):
            self.cc[i] = NOT_MEASURED
        self.emissivity = emissivity
        self.tr_offset = tr_offset
        self._off_row = array("i", bytes(4 * _ROWS))  # offset_avg + OCC_row << scale
        self._off_col = array("i", bytes(4 * _COLS))  # OCC_col << scale
        self._a_row = array("i", bytes(4 * _ROWS))  # alpha_ref + ACC_row << scale
        self._a_col = array("i", bytes(4 * _COLS))  # ACC_col << scale
        self.ctrl = 0
        self.subpage = -1
        self.subpages = 0  # subpages computed since begin(): the first two are not valid
        self.torn = 0  # subpages dropped because the RAM changed while being read
        self.ta = self.vdd = 0.0
        self._t = None  # ticks_ms of the last subpage

    # --- I/O ------------------------------------------------------------------------------

    def begin(self):
        """Read the EEPROM, extract the calibration, select chess mode. OSError if the
        sensor does not answer or its EEPROM makes no sense."""
        self._i2c.readfrom_mem_into(self._addr, _EEPROM, self._ee, addrsize=16)
        self.extract()
        ctrl = self._get(_REG_CTRL)
        if not ctrl & _CTRL_CHESS:
            ctrl |= _CTRL_CHESS
            self._put(_REG_CTRL, ctrl)
        self.ctrl = ctrl
        self.subpages = 0

    def set_refresh(self, code):
        """Refresh rate code 0..7 (RATES_X10: 0.5 .. 64 subpages per second)."""
        ctrl = self._get(_REG_CTRL)
        ctrl = (ctrl & ~_CTRL_RATE & 0xFFFF) | ((code & 7) << 7)
        self._put(_REG_CTRL, ctrl)
        self.ctrl = ctrl

    def poll(self):
        """If the sensor has a new subpage: read it, compute its pixels into `cc`, return its
        number (0 or 1). Else -1 (also for a torn or unusable read)."""
        st = self._get(_REG_STATUS)
        if not st & _ST_NEW:
            return -1
        for _ in range(_READ_TRIES):
            # clear new-data first: if it is set again after the read, the RAM moved under us
            self._put(_REG_STATUS, st & _ST_OVERWRITE)
            self._i2c.readfrom_mem_into(self._addr, _RAM, self._ram, addrsize=16)
            after = self._get(_REG_STATUS)
            if not after & _ST_NEW:
                break
            st = after
        else:
            self.torn += 1
            return -1
        sub = st & 1
        if not self.compute(sub):
            return -1
        self.subpage = sub
        self.subpages += 1
        self._t = ticks_ms()
        return sub

    def due_ms(self):
        """ms until the sensor may hold its next subpage: one refresh period after the last
        (0: one may be waiting already)."""
        if self._t is None:
            return 0
        period = 10000 // RATES_X10[(self.ctrl >> 7) & 7]
        return max(period - ticks_diff(ticks_ms(), self._t), 0)

    def read_cc(self):
        """HAL thermo role: the warmest pixel, centi-degrees C (-32768 before any frame)."""
        peak = NOT_MEASURED
        for v in self.cc:
            if v > peak:
                peak = v
        return peak

    def _get(self, reg):
        self._i2c.readfrom_mem_into(self._addr, reg, self._w, addrsize=16)
        return (self._w[0] << 8) | self._w[1]

    def _put(self, reg, value):
        self._w[0] = value >> 8
        self._w[1] = value & 0xFF
        self._i2c.writeto_mem(self._addr, reg, self._w, addrsize=16)

    # --- calibration (datasheet 11.1) -----------------------------------------------------

    def ee(self, i):
        """EEPROM word at 0x2400 + i."""
        return (self._ee[2 * i] << 8) | self._ee[2 * i + 1]

    def extract(self):
        """Calibration parameters from the EEPROM buffer into attributes."""
        e = self.ee
        w = e(0x33)
        self.k_vdd = _s(w >> 8, 8) * 32
        self.vdd25 = ((w & 0xFF) - 256) * 32 - 8192
        w = e(0x32)
        self.kv_ptat = _s(w >> 10, 6) / 4096
        self.kt_ptat = _s(w & 0x3FF, 10) / 8
        self.vptat25 = _s(e(0x31), 16)
        self.alpha_ptat = (e(0x10) >> 12) / 4 + 8
        self.gain = _s(e(0x30), 16)
        if not self.k_vdd or not self.kt_ptat or not self.gain:
            raise OSError("MLX90640: EEPROM blank or unreadable (K_Vdd, Kt_PTAT or GAIN is 0)")
        w = e(0x38)
        self.res_ee = (w >> 12) & 3
        kv_scale = (w >> 8) & 15
        kta_scale1 = ((w >> 4) & 15) + 8
        self.kta_scale2 = w & 15
        self._kta_div = 2.0 ** -kta_scale1
        # offsets: offset_avg + OCC_row_i * 2^scale_row + OCC_col_j * 2^scale_col
        #          + offset_pixel(i, j) * 2^scale_remnant
        w = e(0x10)
        self.occ_rem = w & 15
        self._table(self._off_row, 0x12, _ROWS, (w >> 8) & 15, _s(e(0x11), 16))
        self._table(self._off_col, 0x18, _COLS, (w >> 4) & 15, 0)
        # alpha: (alpha_ref + ACC_row * 2^s + ACC_col * 2^s + alpha_pixel * 2^s) / 2^scale
        w = e(0x20)
        self.acc_rem = w & 15
        self._alpha_div = 2.0 ** -((w >> 12) + 30)
        self._table(self._a_row, 0x22, _ROWS, (w >> 8) & 15, e(0x21))
        self._table(self._a_col, 0x28, _COLS, (w >> 4) & 15, 0)
        # per row/column parity class k = 2 * (row & 1) + (col & 1), rows and columns counted
        # from 0 (the datasheet's "row odd" is our even row): RoCo, RoCe, ReCo, ReCe
        w = e(0x34)
        self.kv = (_s(w >> 12, 4) / 2 ** kv_scale, _s((w >> 4) & 15, 4) / 2 ** kv_scale,
                   _s((w >> 8) & 15, 4) / 2 ** kv_scale, _s(w & 15, 4) / 2 ** kv_scale)
        hi = e(0x36)
        lo = e(0x37)
        self.kta_rc = (_s(hi >> 8, 8), _s(lo >> 8, 8), _s(hi & 0xFF, 8), _s(lo & 0xFF, 8))
        w = e(0x35)  # interleaved-mode corrections (extracted for completeness, not applied)
        self.il_chess = (_s(w & 0x3F, 6) / 16, _s((w >> 6) & 0x1F, 5) / 2, _s(w >> 11, 5) / 8)
        # compensation pixel
        w = e(0x39)
        a0 = (w & 0x3FF) * 2.0 ** -((e(0x20) >> 12) + 27)
        self.alpha_cp = (a0, a0 * (1 + _s(w >> 10, 6) / 128))
        w = e(0x3A)
        off0 = _s(w & 0x3FF, 10)
        self.off_cp = (off0, off0 + _s(w >> 10, 6))
        w = e(0x3B)
        self.kv_cp = _s(w >> 8, 8) / 2 ** kv_scale
        self.kta_cp = _s(w & 0xFF, 8) * self._kta_div
        w = e(0x3C)
        self.ks_ta = _s(w >> 8, 8) / 8192
        self.tgc = _s(w & 0xFF, 8) / 32
        # object temperature ranges: corner temperatures and KsTo per range
        w = e(0x3F)
        ks_div = 2.0 ** -((w & 15) + 8)
        step = ((w >> 12) & 3) * 10
        ct3 = ((w >> 4) & 15) * step
        ct4 = ((w >> 8) & 15) * step + ct3
        self.ct = (-40, 0, ct3, ct4)
        lo = e(0x3D)
        hi = e(0x3E)
        k = self.ks_to = (_s(lo & 0xFF, 8) * ks_div, _s(lo >> 8, 8) * ks_div,
                          _s(hi & 0xFF, 8) * ks_div, _s(hi >> 8, 8) * ks_div)
        c3 = 1 + k[1] * ct3
        self.alpha_corr = (1 / (1 + k[0] * 40), 1.0, c3, c3 * (1 + k[2] * (ct4 - ct3)))

    def pixel(self, p):
        """(offset_ref int, alpha float, kta float, kv float, outlier) of pixel p; None for a
        failed pixel (EEPROM word 0)."""
        w = self.ee(0x40 + p)
        if not w:
            return None
        r = p >> 5
        c = p & 31
        k = 2 * (r & 1) + (c & 1)
        return (self._off_row[r] + self._off_col[c] + (_s(w >> 10, 6) << self.occ_rem),
                (self._a_row[r] + self._a_col[c] + (_s((w >> 4) & 0x3F, 6) << self.acc_rem))
                * self._alpha_div,
                (self.kta_rc[k] + (_s((w >> 1) & 7, 3) << self.kta_scale2)) * self._kta_div,
                self.kv[k], w & 1)

    # --- temperatures (datasheet 11.2) ----------------------------------------------------

    def compute(self, sub):
        """To of the pixels of subpage `sub` from the RAM buffer into `cc`; False if the
        frame is unusable (gain word 0)."""
        ram = self._ram
        ee = self._ee
        g = _s((ram[2 * _I_GAIN] << 8) | ram[2 * _I_GAIN + 1], 16)
        if not g:
            return False
        k_gain = self.gain / g
        # supply voltage and ambient temperature (11.2.2.2, 11.2.2.3)
        res_corr = (1 << self.res_ee) / (1 << ((self.ctrl >> 10) & 3))
        dv = (res_corr * self._ramw(_I_VDD) - self.vdd25) / self.k_vdd  # Vdd - 3.3 V
        ptat = self._ramw(_I_PTAT)
        ptat_art = ptat / (ptat * self.alpha_ptat + self._ramw(_I_VBE)) * 262144
        ta = (ptat_art / (1 + self.kv_ptat * dv) - self.vptat25) / self.kt_ptat + 25
        self.vdd = dv + 3.3
        self.ta = ta
        dta = ta - 25
        # compensation pixel of this subpage: gain, then offset / Ta / Vdd (11.2.2.6)
        cp = (self._ramw(_I_CP1 if sub else _I_CP0) * k_gain
              - self.off_cp[sub] * (1 + self.kta_cp * dta) * (1 + self.kv_cp * dv))
        eps = self.emissivity
        tgc_cp = self.tgc * cp
        ks_ta = 1 + self.ks_ta * dta
        a_cp = self.tgc * self.alpha_cp[sub]
        # reflected-temperature term (11.2.2.9): Ta_r = Tr^4 - (Tr^4 - Ta^4) / emissivity
        tr4 = (ta + self.tr_offset + 273.15) ** 4
        ta_r = tr4 - (tr4 - (ta + 273.15) ** 4) / eps
        ks2 = self.ks_to[1]
        basic = 1 - ks2 * 273.15
        ct3 = self.ct[2]
        ct4 = self.ct[3]
        s2 = self.kta_scale2
        rem_o = self.occ_rem
        rem_a = self.acc_rem
        kta_div = self._kta_div
        a_div = self._alpha_div
        cc = self.cc
        for r in range(_ROWS):
            c = (r + sub) & 1  # first column of this subpage in row r
            k = 2 * (r & 1) + c  # column parity is the same along the row
            kta_rc = self.kta_rc[k]
            kv_dv = 1 + self.kv[k] * dv
            off_r = self._off_row[r]
            a_r = self._a_row[r]
            p = r * _COLS + c
            while c < _COLS:
                i = 2 * (0x40 + p)
                w = (ee[i] << 8) | ee[i + 1]
                if not w:  # failed pixel (datasheet note 1 of table 10)
                    cc[p] = NOT_MEASURED
                else:
                    os_ref = off_r + self._off_col[c] + (_s(w >> 10, 6) << rem_o)
                    kta = (kta_rc + (_s((w >> 1) & 7, 3) << s2)) * kta_div
                    raw = (ram[2 * p] << 8) | ram[2 * p + 1]
                    if raw & 0x8000:
                        raw -= 0x10000
                    # gain, offset, Ta, Vdd (11.2.2.5.1-3); emissivity and gradient (5.4-7)
                    v_ir = ((raw * k_gain - os_ref * (1 + kta * dta) * kv_dv) / eps - tgc_cp)
                    alpha = (a_r + self._a_col[c] + (_s((w >> 4) & 0x3F, 6) << rem_a)) * a_div
                    a_c = (alpha - a_cp) * ks_ta
                    cc[p] = self._to(v_ir, a_c, ta_r, ks2, basic, ct3, ct4)
                c += 2
                p += 2
        return True

    def _to(self, v_ir, a_c, ta_r, ks2, basic, ct3, ct4):
        """Centi-degrees C of one pixel: basic range, then its own range (11.2.2.9)."""
        x = a_c * a_c * a_c * (v_ir + a_c * ta_r)
        if x <= 0 or a_c <= 0:
            return NOT_MEASURED
        t4 = v_ir / (a_c * basic + ks2 * sqrt(sqrt(x))) + ta_r
        if t4 <= 0:
            return NOT_MEASURED
        to = sqrt(sqrt(t4)) - 273.15
        rng = 0 if to < 0 else 1 if to < ct3 else 2 if to < ct4 else 3
        d = a_c * self.alpha_corr[rng] * (1 + self.ks_to[rng] * (to - self.ct[rng]))
        t4 = v_ir / d + ta_r if d else 0
        if t4 <= 0:
            return NOT_MEASURED
        v = (sqrt(sqrt(t4)) - 273.15) * 100
        v = int(v + 0.5) if v >= 0 else -int(0.5 - v)  # round half away from zero
        # int16 ends at 327.67 C: a hotter pixel (fire, exhaust) saturates, it stays "hot"
        return 32767 if v > 32767 else v

    def _ramw(self, i):
        v = (self._ram[2 * i] << 8) | self._ram[2 * i + 1]
        return v - 0x10000 if v & 0x8000 else v

    def _table(self, out, word, n, scale, base):
        """out[i] = base + (signed nibble i of the words from 0x2400 + word) << scale; nibble
        i sits in word + i // 4 at bits 4 * (i % 4) (row 1 of the datasheet in bits 3..0)."""
        for i in range(n):
            out[i] = base + (_s((self.ee(word + (i >> 2)) >> (4 * (i & 3))) & 15, 4) << scale)


def _s(v, bits):
    """Two's complement value of the low `bits` bits of v."""
    v &= (1 << bits) - 1
    return v - (1 << bits) if v & (1 << (bits - 1)) else v
