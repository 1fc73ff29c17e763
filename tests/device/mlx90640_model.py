"""A synthetic MLX90640 for driver tests: EEPROM from chosen calibration fields, frames from a
known scene through the datasheet's equations run forwards.

`Fields` holds the raw EEPROM fields (signed where the datasheet marks them +-); `encode`
packs them into the 832 EEPROM words; `Calibration` decodes them into the physical parameters
with the datasheet's formulas, written independently of the driver (1-based rows and columns
as in the datasheet); `frame` turns scene temperatures into the RAM words the sensor would
report for one chess subpage. The driver must invert this: its temperatures are compared with
the scene (the only error being the rounding of the raw words to integers).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

ROWS = 24
COLS = 32
PIXELS = ROWS * COLS
WORDS = 832
NOT_MEASURED = -32768


def _u(value: int, bits: int) -> int:
    """Field value -> its bits (two's complement for negatives); out of range is a bug."""
    lo, hi = -(1 << (bits - 1)), (1 << bits) - 1
    assert lo <= value <= hi, (value, bits)
    return value & ((1 << bits) - 1)


def _signed_ok(value: int, bits: int) -> int:
    assert -(1 << (bits - 1)) <= value < (1 << (bits - 1)), (value, bits)
    return value


@dataclass
class Fields:
    """Raw EEPROM fields. Row/column lists are indexed from 0 (datasheet row 1 = index 0)."""

    alpha_ptat_ee: int = 4  # alpha_PTAT = ee / 4 + 8 = 9
    occ_scale_row: int = 2
    occ_scale_col: int = 2
    occ_scale_rem: int = 0
    offset_avg: int = -52
    occ_row: list[int] = field(default_factory=lambda: [0] * ROWS)  # s4
    occ_col: list[int] = field(default_factory=lambda: [0] * COLS)  # s4
    alpha_scale_ee: int = 7  # alpha scale = ee + 30
    acc_scale_row: int = 3
    acc_scale_col: int = 3
    acc_scale_rem: int = 2
    alpha_ref: int = 16500  # u16
    acc_row: list[int] = field(default_factory=lambda: [0] * ROWS)  # s4
    acc_col: list[int] = field(default_factory=lambda: [0] * COLS)  # s4
    gain_ee: int = 5880  # s16
    vptat25: int = 12273  # s16
    kv_ptat_ee: int = 9  # s6, / 2^12
    kt_ptat_ee: int = 340  # s10, / 2^3
    kvdd_ee: int = -100  # s8, * 2^5
    vdd25_ee: int = 94  # u8: (ee - 256) * 2^5 - 2^13
    kv_ro_co: int = 5  # s4 each: 1-based row odd/even, column odd/even
    kv_re_co: int = 3
    kv_ro_ce: int = 4
    kv_re_ce: int = 2
    il_c1: int = -23  # s6, / 16
    il_c2: int = 7  # s5, / 2
    il_c3: int = -5  # s5, / 8
    kta_ro_co: int = 99  # s8 each
    kta_re_co: int = 91
    kta_ro_ce: int = 96
    kta_re_ce: int = 88
    res_ee: int = 2  # 18-bit ADC at calibration
    kv_scale: int = 3
    kta_scale1_ee: int = 7  # Kta scale 1 = ee + 8
    kta_scale2: int = 2
    cp_ratio: int = -5  # s6: alpha_CP1 = alpha_CP0 * (1 + ratio / 2^7)
    alpha_cp0_ee: int = 70  # u10, / 2^(alpha_scale_ee + 27)
    off_cp0: int = -75  # s10
    off_cp_delta: int = 3  # s6
    kv_cp_ee: int = 4  # s8, / 2^kv_scale
    kta_cp_ee: int = 30  # s8, / 2^kta_scale1
    ks_ta_ee: int = -8  # s8, / 2^13
    tgc_ee: int = 8  # s8, / 2^5
    ks_to_ee: tuple[int, int, int, int] = (-110, -102, -95, -90)  # s8, ranges 1..4
    ks_to_scale_ee: int = 9  # KsTo scale = ee + 8
    ct_step_ee: int = 2  # step = ee * 10 degC
    ct3_ee: int = 6  # CT3 = ee * step = 120 degC
    ct4_ee: int = 5  # CT4 = ee * step + CT3 = 220 degC
    pix_offset: list[int] = field(default_factory=lambda: [0] * PIXELS)  # s6
    pix_alpha: list[int] = field(default_factory=lambda: [0] * PIXELS)  # s6
    pix_kta: list[int] = field(default_factory=lambda: [0] * PIXELS)  # s3
    outlier: set[int] = field(default_factory=set)
    failed: set[int] = field(default_factory=set)  # pixel word forced to 0


def random_fields(seed: int) -> Fields:
    """Plausible calibration with every per-row, per-column and per-pixel field varied."""
    rng = random.Random(seed)
    f = Fields()
    f.occ_row = [rng.randint(-8, 7) for _ in range(ROWS)]
    f.occ_col = [rng.randint(-8, 7) for _ in range(COLS)]
    f.acc_row = [rng.randint(-8, 7) for _ in range(ROWS)]
    f.acc_col = [rng.randint(-8, 7) for _ in range(COLS)]
    f.pix_offset = [rng.randint(-32, 31) for _ in range(PIXELS)]
    f.pix_alpha = [rng.randint(-32, 31) for _ in range(PIXELS)]
    f.pix_kta = [rng.randint(-4, 3) for _ in range(PIXELS)]
    f.outlier = {rng.randrange(PIXELS) for _ in range(3)}
    f.failed = {5 * COLS + 7}
    return f


def edge_fields() -> Fields:
    """Every field at an extreme: most negative two's complement values, largest scales."""
    f = Fields(
        alpha_ptat_ee=15, occ_scale_row=15, occ_scale_col=14, occ_scale_rem=13,
        offset_avg=-32768, alpha_scale_ee=15, acc_scale_row=15, acc_scale_col=14,
        acc_scale_rem=13, alpha_ref=65535, gain_ee=-32768, vptat25=32767, kv_ptat_ee=-32,
        kt_ptat_ee=-512, kvdd_ee=-128, vdd25_ee=0, kv_ro_co=-8, kv_re_co=7, kv_ro_ce=-1,
        kv_re_ce=-8, il_c1=-32, il_c2=-16, il_c3=15, kta_ro_co=-128, kta_re_co=127,
        kta_ro_ce=-1, kta_re_ce=-128, res_ee=3, kv_scale=15, kta_scale1_ee=15, kta_scale2=15,
        cp_ratio=-32, alpha_cp0_ee=1023, off_cp0=-512, off_cp_delta=-32, kv_cp_ee=-128,
        kta_cp_ee=-128, ks_ta_ee=-128, tgc_ee=-128, ks_to_ee=(-128, 127, -1, -128),
        ks_to_scale_ee=15, ct_step_ee=3, ct3_ee=15, ct4_ee=15,
    )
    f.occ_row = [-8 if i % 2 else 7 for i in range(ROWS)]
    f.occ_col = [7 if i % 3 else -8 for i in range(COLS)]
    f.acc_row = [-8] * ROWS
    f.acc_col = [-1] * COLS
    f.pix_offset = [-32 if i % 2 else 31 for i in range(PIXELS)]
    f.pix_alpha = [31 if i % 2 else -32 for i in range(PIXELS)]
    f.pix_kta = [-4 if i % 3 else 3 for i in range(PIXELS)]
    return f


def _nibbles(values: list[int]) -> list[int]:
    """Signed nibbles packed 4 per word, the first in bits 3..0."""
    words = []
    for i in range(0, len(values), 4):
        w = 0
        for k, v in enumerate(values[i:i + 4]):
            w |= _u(v, 4) << (4 * k)
        words.append(w)
    return words


def encode(f: Fields) -> list[int]:
    """The 832 EEPROM words (0x2400..0x273F) holding these fields."""
    ee = [0] * WORDS
    ee[0x0A] = 0x0000  # calibration mode word: chess (not read by the driver)
    ee[0x0C] = 0x1901  # power-up value of the control register: chess, 2 Hz, 18 bit
    ee[0x10] = (f.alpha_ptat_ee << 12) | (f.occ_scale_row << 8) | (f.occ_scale_col << 4) \
        | f.occ_scale_rem
    ee[0x11] = _u(f.offset_avg, 16)
    ee[0x12:0x18] = _nibbles(f.occ_row)
    ee[0x18:0x20] = _nibbles(f.occ_col)
    ee[0x20] = (f.alpha_scale_ee << 12) | (f.acc_scale_row << 8) | (f.acc_scale_col << 4) \
        | f.acc_scale_rem
    ee[0x21] = f.alpha_ref
    ee[0x22:0x28] = _nibbles(f.acc_row)
    ee[0x28:0x30] = _nibbles(f.acc_col)
    ee[0x30] = _u(f.gain_ee, 16)
    ee[0x31] = _u(f.vptat25, 16)
    ee[0x32] = (_u(f.kv_ptat_ee, 6) << 10) | _u(f.kt_ptat_ee, 10)
    ee[0x33] = (_u(f.kvdd_ee, 8) << 8) | f.vdd25_ee
    ee[0x34] = (_u(f.kv_ro_co, 4) << 12) | (_u(f.kv_re_co, 4) << 8) | (_u(f.kv_ro_ce, 4) << 4) \
        | _u(f.kv_re_ce, 4)
    ee[0x35] = (_u(f.il_c3, 5) << 11) | (_u(f.il_c2, 5) << 6) | _u(f.il_c1, 6)
    ee[0x36] = (_u(f.kta_ro_co, 8) << 8) | _u(f.kta_re_co, 8)
    ee[0x37] = (_u(f.kta_ro_ce, 8) << 8) | _u(f.kta_re_ce, 8)
    ee[0x38] = (f.res_ee << 12) | (f.kv_scale << 8) | (f.kta_scale1_ee << 4) | f.kta_scale2
    ee[0x39] = (_u(f.cp_ratio, 6) << 10) | f.alpha_cp0_ee
    ee[0x3A] = (_u(f.off_cp_delta, 6) << 10) | _u(f.off_cp0, 10)
    ee[0x3B] = (_u(f.kv_cp_ee, 8) << 8) | _u(f.kta_cp_ee, 8)
    ee[0x3C] = (_u(f.ks_ta_ee, 8) << 8) | _u(f.tgc_ee, 8)
    k1, k2, k3, k4 = f.ks_to_ee
    ee[0x3D] = (_u(k2, 8) << 8) | _u(k1, 8)
    ee[0x3E] = (_u(k4, 8) << 8) | _u(k3, 8)
    ee[0x3F] = (f.ct_step_ee << 12) | (f.ct4_ee << 8) | (f.ct3_ee << 4) | f.ks_to_scale_ee
    for p in range(PIXELS):
        w = (_u(f.pix_offset[p], 6) << 10) | (_u(f.pix_alpha[p], 6) << 4) \
            | (_u(f.pix_kta[p], 3) << 1) | (1 if p in f.outlier else 0)
        if p in f.failed:
            w = 0
        else:
            assert w, "a working pixel with an all-zero word would read as failed"
        ee[0x40 + p] = w
    return ee


class Calibration:
    """Physical parameters of `Fields`, per the datasheet (rows i, columns j from 1)."""

    def __init__(self, f: Fields) -> None:
        self.f = f
        self.k_vdd = f.kvdd_ee * 32
        self.vdd25 = (f.vdd25_ee - 256) * 32 - 8192
        self.kv_ptat = f.kv_ptat_ee / 4096
        self.kt_ptat = f.kt_ptat_ee / 8
        self.vptat25 = f.vptat25
        self.alpha_ptat = f.alpha_ptat_ee / 4 + 8
        self.gain = f.gain_ee
        self.ks_ta = f.ks_ta_ee / 8192
        self.tgc = f.tgc_ee / 32
        kta_div = 2 ** (f.kta_scale1_ee + 8)
        self.kta_cp = f.kta_cp_ee / kta_div
        self.kv_cp = f.kv_cp_ee / 2 ** f.kv_scale
        self.alpha_cp = [f.alpha_cp0_ee / 2 ** (f.alpha_scale_ee + 27)]
        self.alpha_cp.append(self.alpha_cp[0] * (1 + f.cp_ratio / 128))
        self.off_cp = [f.off_cp0, f.off_cp0 + f.off_cp_delta]
        step = f.ct_step_ee * 10
        ct3 = f.ct3_ee * step
        self.ct = [-40, 0, ct3, ct3 + f.ct4_ee * step]
        self.ks_to = [k / 2 ** (f.ks_to_scale_ee + 8) for k in f.ks_to_ee]
        k = self.ks_to
        self.alpha_corr = [1 / (1 + k[0] * 40), 1.0, 1 + k[1] * ct3]
        self.alpha_corr.append(self.alpha_corr[2] * (1 + k[2] * (self.ct[3] - ct3)))
        self.il_chess = [f.il_c1 / 16, f.il_c2 / 2, f.il_c3 / 8]
        self.res_ee = f.res_ee

    def pixel(self, p: int) -> tuple[int, float, float, float]:
        """(offset reference, alpha, Kta, Kv) of pixel p (0-based, row-major)."""
        f = self.f
        i, j = p // COLS + 1, p % COLS + 1
        row_odd, col_odd = i % 2 == 1, j % 2 == 1
        offset = (f.offset_avg + f.occ_row[i - 1] * 2 ** f.occ_scale_row
                  + f.occ_col[j - 1] * 2 ** f.occ_scale_col
                  + f.pix_offset[p] * 2 ** f.occ_scale_rem)
        alpha = ((f.alpha_ref + f.acc_row[i - 1] * 2 ** f.acc_scale_row
                  + f.acc_col[j - 1] * 2 ** f.acc_scale_col
                  + f.pix_alpha[p] * 2 ** f.acc_scale_rem) / 2 ** (f.alpha_scale_ee + 30))
        kta_rc = {(True, True): f.kta_ro_co, (False, True): f.kta_re_co,
                  (True, False): f.kta_ro_ce, (False, False): f.kta_re_ce}[row_odd, col_odd]
        kv_rc = {(True, True): f.kv_ro_co, (False, True): f.kv_re_co,
                 (True, False): f.kv_ro_ce, (False, False): f.kv_re_ce}[row_odd, col_odd]
        kta = (kta_rc + f.pix_kta[p] * 2 ** f.kta_scale2) / 2 ** (f.kta_scale1_ee + 8)
        return offset, alpha, kta, kv_rc / 2 ** f.kv_scale

    def scalars(self) -> dict[str, float | int | list[float] | list[int]]:
        """The driver's attribute names -> expected values."""
        return {"k_vdd": self.k_vdd, "vdd25": self.vdd25, "kv_ptat": self.kv_ptat,
                "kt_ptat": self.kt_ptat, "vptat25": self.vptat25,
                "alpha_ptat": self.alpha_ptat, "gain": self.gain, "ks_ta": self.ks_ta,
                "tgc": self.tgc, "kta_cp": self.kta_cp, "kv_cp": self.kv_cp,
                "alpha_cp": self.alpha_cp, "off_cp": self.off_cp, "ct": self.ct,
                "ks_to": self.ks_to, "alpha_corr": self.alpha_corr,
                "il_chess": self.il_chess, "res_ee": self.res_ee}


@dataclass
class Frame:
    ram: list[int]  # 832 words as the sensor holds them (unsigned 16-bit)
    ta: float  # ambient temperature the rounded raw values really encode
    vdd: float
    subpage: int


def subpage_of(p: int) -> int:
    return (p // COLS + p % COLS) % 2


def frame(cal: Calibration, scene: list[float], subpage: int, *, ta: float, vdd: float,
          ctrl: int, emissivity: float = 1.0, tr_offset: float = -8.0, seed: int = 0) -> Frame:
    """RAM words of one subpage showing `scene` (degC per pixel) at ambient ta, supply vdd.

    Pixels of the other subpage hold random words: the driver must not read them.
    """
    rng = random.Random(seed)
    ram = [rng.randrange(0x10000) for _ in range(WORDS)]
    res_corr = 2 ** cal.res_ee / 2 ** ((ctrl >> 10) & 3)
    # supply: VDD word such that (res_corr * word - VDD25) / K_Vdd = vdd - 3.3
    vdd_word = round(((vdd - 3.3) * cal.k_vdd + cal.vdd25) / res_corr)
    dv = (res_corr * vdd_word - cal.vdd25) / cal.k_vdd
    # ambient: choose V_BE, solve V_PTAT for the PTAT_art that gives ta, then re-derive ta
    v_be = 19442
    art = ((ta - 25) * cal.kt_ptat + cal.vptat25) * (1 + cal.kv_ptat * dv)
    v_ptat = round(art * v_be / (2 ** 18 - art * cal.alpha_ptat))
    art = v_ptat / (v_ptat * cal.alpha_ptat + v_be) * 2 ** 18
    ta = (art / (1 + cal.kv_ptat * dv) - cal.vptat25) / cal.kt_ptat + 25
    dta = ta - 25
    gain_word = 6383
    k_gain = cal.gain / gain_word
    cp_words = [-80, -77]
    cp = [cp_words[s] * k_gain - cal.off_cp[s] * (1 + cal.kta_cp * dta) * (1 + cal.kv_cp * dv)
          for s in (0, 1)]
    tr4 = (ta + tr_offset + 273.15) ** 4
    ta_r = tr4 - (tr4 - (ta + 273.15) ** 4) / emissivity
    for p in range(PIXELS):
        if subpage_of(p) != subpage:
            continue
        offset, alpha, kta, kv = cal.pixel(p)
        to = scene[p]
        rng_i = 0 if to < 0 else 1 if to < cal.ct[2] else 2 if to < cal.ct[3] else 3
        a_comp = (alpha - cal.tgc * cal.alpha_cp[subpage]) * (1 + cal.ks_ta * dta)
        v_ir = (a_comp * cal.alpha_corr[rng_i] * (1 + cal.ks_to[rng_i] * (to - cal.ct[rng_i]))
                * ((to + 273.15) ** 4 - ta_r))
        pix_os = (v_ir + cal.tgc * cp[subpage]) * emissivity
        raw = round((pix_os + offset * (1 + kta * dta) * (1 + kv * dv)) / k_gain)
        assert -32768 <= raw <= 32767, (p, to, raw)
        ram[p] = raw & 0xFFFF
    for index, value in ((768, v_be), (776, cp_words[0]), (778, gain_word), (800, v_ptat),
                         (808, cp_words[1]), (810, vdd_word)):
        ram[index] = _u(_signed_ok(value, 16), 16)
    return Frame(ram, ta, dv + 3.3, subpage)


def beach_scene() -> list[float]:
    """A night beach in degC: cold sky band, sea, sand with a gradient, a person, a group of
    hot engine pixels (range 3) and one very hot exhaust pixel (range 4), for the corner
    temperatures of `Fields` (CT3 120, CT4 220 degC)."""
    scene = []
    for p in range(PIXELS):
        r, c = divmod(p, COLS)
        if r < 4:
            t = -21.0 + 0.3 * c / COLS  # clear sky: range 1 (below 0 degC)
        elif r < 9:
            t = 9.2 + 0.05 * c  # sea, warmer than the air in winter
        else:
            t = 4.0 + 0.12 * (r - 9) + 0.02 * c  # wet to dry sand
        scene.append(t)
    for r in range(12, 18):
        for c in range(14, 17):
            scene[r * COLS + c] = 31.5 - 0.4 * (r - 12)  # a clothed person, warm core
    for r, c in ((20, 3), (20, 4), (21, 3), (21, 4)):
        scene[r * COLS + c] = 180.0  # an outboard engine block: range 3 (CT3 .. CT4)
    scene[21 * COLS + 5] = 290.0  # its exhaust: range 4 (above CT4)
    return scene


def words_hex(words: list[int]) -> str:
    return "".join(f"{w:04x}" for w in words)
