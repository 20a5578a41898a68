"""ICAO Doc 9303 machine-readable zone (MRZ) parsing and validation, text only (no OCR).

Supports TD1 (3x30), TD2 (2x36), TD3 (2x44, passports), MRV-A (2x44 visa) and MRV-B (2x36 visa),
per Doc 9303 parts 3-7. Check digits use the 7-3-1 weighting. Classic OCR confusions (O/0, I/1, B/8,
S/5, Z/2, G/6, D/0, Q/0) are repaired in numeric positions only, and only when a single minimal
substitution makes the failing check digit pass; repairs are reported in ``MrzResult.repaired``.

Error messages never contain MRZ text (it is personal data and may end up in logs).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from idproof.errors import IdproofError

__all__ = [
    "ICAO_SPECIAL_CODES",
    "ISO3166_ALPHA3",
    "MrzError",
    "MrzField",
    "MrzResult",
    "check_digit",
    "parse_mrz",
]

MrzFormat = Literal["TD1", "TD2", "TD3", "MRVA", "MRVB"]


class MrzError(IdproofError):
    """The text cannot be read as an ICAO 9303 MRZ (wrong line count, line length or characters)."""

    code = "mrz_unreadable"


@dataclass(frozen=True)
class MrzField:
    name: str
    value: str
    check_ok: bool | None
    repaired_from: str | None


# ISO 3166-1 alpha-3 (249 officially assigned codes).
ISO3166_ALPHA3: frozenset[str] = frozenset({
    "ABW", "AFG", "AGO", "AIA", "ALA", "ALB", "AND", "ARE", "ARG", "ARM", "ASM", "ATA", "ATF", "ATG",
    "AUS", "AUT", "AZE", "BDI", "BEL", "BEN", "BES", "BFA", "BGD", "BGR", "BHR", "BHS", "BIH", "BLM",
    "BLR", "BLZ", "BMU", "BOL", "BRA", "BRB", "BRN", "BTN", "BVT", "BWA", "CAF", "CAN", "CCK", "CHE",
    "CHL", "CHN", "CIV", "CMR", "COD", "COG", "COK", "COL", "COM", "CPV", "CRI", "CUB", "CUW", "CXR",
    "CYM", "CYP", "CZE", "DEU", "DJI", "DMA", "DNK", "DOM", "DZA", "ECU", "EGY", "ERI", "ESH", "ESP",
    "EST", "ETH", "FIN", "FJI", "FLK", "FRA", "FRO", "FSM", "GAB", "GBR", "GEO", "GGY", "GHA", "GIB",
    "GIN", "GLP", "GMB", "GNB", "GNQ", "GRC", "GRD", "GRL", "GTM", "GUF", "GUM", "GUY", "HKG", "HMD",
    "HND", "HRV", "HTI", "HUN", "IDN", "IMN", "IND", "IOT", "IRL", "IRN", "IRQ", "ISL", "ISR", "ITA",
    "JAM", "JEY", "JOR", "JPN", "KAZ", "KEN", "KGZ", "KHM", "KIR", "KNA", "KOR", "KWT", "LAO", "LBN",
    "LBR", "LBY", "LCA", "LIE", "LKA", "LSO", "LTU", "LUX", "LVA", "MAC", "MAF", "MAR", "MCO", "MDA",
    "MDG", "MDV", "MEX", "MHL", "MKD", "MLI", "MLT", "MMR", "MNE", "MNG", "MNP", "MOZ", "MRT", "MSR",
    "MTQ", "MUS", "MWI", "MYS", "MYT", "NAM", "NCL", "NER", "NFK", "NGA", "NIC", "NIU", "NLD", "NOR",
    "NPL", "NRU", "NZL", "OMN", "PAK", "PAN", "PCN", "PER", "PHL", "PLW", "PNG", "POL", "PRI", "PRK",
    "PRT", "PRY", "PSE", "PYF", "QAT", "REU", "ROU", "RUS", "RWA", "SAU", "SDN", "SEN", "SGP", "SGS",
    "SHN", "SJM", "SLB", "SLE", "SLV", "SMR", "SOM", "SPM", "SRB", "SSD", "STP", "SUR", "SVK", "SVN",
    "SWE", "SWZ", "SXM", "SYC", "SYR", "TCA", "TCD", "TGO", "THA", "TJK", "TKL", "TKM", "TLS", "TON",
    "TTO", "TUN", "TUR", "TUV", "TWN", "TZA", "UGA", "UKR", "UMI", "URY", "USA", "UZB", "VAT", "VCT",
    "VEN", "VGB", "VIR", "VNM", "VUT", "WLF", "WSM", "YEM", "ZAF", "ZMB", "ZWE",
})

# Codes ICAO 9303 part 3 allows in addition to ISO 3166-1 alpha-3.
ICAO_SPECIAL_CODES: frozenset[str] = frozenset({
    "D",  # Germany
    "UTO",  # Utopia (specimen documents)
    "XXA", "XXB", "XXC", "XXX",  # stateless / refugee / unspecified nationality
    "EUE",  # European Union
    "UNO", "UNA", "UNK",  # United Nations and agencies, Kosovo resolution 1244
    "XOM", "XPO", "XES", "XIM", "XCC", "XBA", "XCE", "XDC", "XEC",  # other organisations
    "RKS",  # Kosovo
    "GBD", "GBN", "GBO", "GBP", "GBS",  # British nationality variants
    "ZZZ",
})

_VALID_STATES = ISO3166_ALPHA3 | ICAO_SPECIAL_CODES

_WEIGHTS = (7, 3, 1)
_ALLOWED = re.compile(r"^[A-Z0-9<]*$")

# OCR confusions: letter -> digit (numeric positions), and both directions for document numbers.
_LETTER_TO_DIGIT = {"O": "0", "D": "0", "Q": "0", "I": "1", "B": "8", "S": "5", "Z": "2", "G": "6"}
_ALNUM_SWAPS: dict[str, tuple[str, ...]] = {
    "O": ("0",), "D": ("0",), "Q": ("0",), "I": ("1",), "B": ("8",), "S": ("5",), "Z": ("2",), "G": ("6",),
    "0": ("O", "D", "Q"), "1": ("I",), "8": ("B",), "5": ("S",), "2": ("Z",), "6": ("G",),
}
_MAX_DOCNUM_SUBSTITUTIONS = 2


def _char_value(c: str) -> int:
    if c.isdigit():
        return ord(c) - ord("0")
    if "A" <= c <= "Z":
        return ord(c) - ord("A") + 10
    if c == "<":
        return 0
    raise ValueError(f"character {c!r} is not allowed in an MRZ")


def check_digit(s: str) -> int:
    """ICAO 9303 check digit: weights 7-3-1 repeating, '<' = 0, digits at face value, A=10 .. Z=35."""
    return sum(_char_value(c) * _WEIGHTS[i % 3] for i, c in enumerate(s.upper())) % 10


def _check_char_ok(data: str, check: str, *, filler_ok: bool = False) -> bool:
    if check == "<":
        # A filler check digit is only acceptable over an all-filler (empty) field.
        return filler_ok and set(data) <= {"<"}
    if not check.isdigit():
        return False
    return check_digit(data) == int(check)


def _parse_yymmdd(s: str) -> tuple[int, int, int] | None:
    if len(s) != 6 or not s.isdigit():
        return None
    yy, mm, dd = int(s[:2]), int(s[2:4]), int(s[4:])
    try:
        date(2000, mm, dd)  # 2000 is a leap year: accepts 29 Feb; exact year checked by callers
    except ValueError:
        return None
    return yy, mm, dd


def _birth_date(s: str, today: date) -> date | None:
    p = _parse_yymmdd(s)
    if p is None:
        return None
    yy, mm, dd = p
    for century in (2000, 1900):
        try:
            d = date(century + yy, mm, dd)
        except ValueError:
            continue
        if d <= today:
            return d
    return None


def _expiry_date(s: str, today: date) -> date | None:
    p = _parse_yymmdd(s)
    if p is None:
        return None
    yy, mm, dd = p
    limit_year = today.year + 50
    year = 2000 + yy
    if year > limit_year or (year == limit_year and (mm, dd) > (today.month, today.day)):
        year = 1900 + yy
    try:
        return date(year, mm, dd)
    except ValueError:
        return None


def _names(s: str) -> tuple[str, str]:
    s = s.rstrip("<")
    primary, sep, secondary = s.partition("<<")

    def clean(part: str) -> str:
        return " ".join(part.replace("<", " ").split())

    return clean(primary), clean(secondary) if sep else ""


def _state(s: str) -> str:
    return s.replace("<", "")


@dataclass(frozen=True)
class MrzResult:
    format: MrzFormat
    lines: tuple[str, ...]
    document_code: str
    issuing_state: str
    document_number: str
    date_of_birth: date | None
    sex: str
    expiry_date: date | None
    nationality: str
    primary_identifier: str
    secondary_identifier: str
    optional_data: str
    checks: dict[str, bool] = field(default_factory=dict)
    repaired: dict[str, str] = field(default_factory=dict)
    unknown_state_codes: tuple[str, ...] = ()
    raw_fields: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def valid(self) -> bool:
        """True when every check digit defined for this format passes (and dates are real dates)."""
        return bool(self.checks) and all(self.checks.values())

    @property
    def failed_checks(self) -> tuple[str, ...]:
        return tuple(k for k, ok in self.checks.items() if not ok)

    @property
    def fields(self) -> tuple[MrzField, ...]:
        """Per-field view: value, whether its check digit passed (None: no check digit), repair origin."""
        out = []
        for name, value in self.raw_fields.items():
            check_name = "optional" if name == "optional_data" else name
            out.append(MrzField(name, value, self.checks.get(check_name), self.repaired.get(name)))
        return tuple(out)


# --- input normalisation ---------------------------------------------------------------------------

_LAYOUTS: dict[tuple[int, int], str] = {(3, 30): "TD1", (2, 36): "TD2", (2, 44): "TD3"}


def _normalise(text_or_lines: str | Sequence[str]) -> list[str]:
    if isinstance(text_or_lines, str):
        raw = text_or_lines.splitlines()
    else:
        raw = list(text_or_lines)
        if not all(isinstance(x, str) for x in raw):
            raise MrzError("MRZ lines must be strings.", fix="Pass the MRZ as text or a sequence of str lines.")
    lines = ["".join(line.split()).upper() for line in raw]
    return [line for line in lines if line]


def _detect(lines: list[str]) -> MrzFormat:
    n = len(lines)
    if n not in (2, 3):
        raise MrzError(
            f"An MRZ has 2 or 3 lines; got {n} non-empty line(s).",
            fix="Pass exactly the MRZ lines: 3x30 (TD1), 2x36 (TD2/MRV-B) or 2x44 (TD3/MRV-A).",
        )
    lengths = [len(line) for line in lines]
    if len(set(lengths)) != 1 or (n, lengths[0]) not in _LAYOUTS:
        raise MrzError(
            f"MRZ line lengths {lengths} do not match any ICAO 9303 layout for {n} lines.",
            fix="Expected 3 lines of 30 (TD1), 2 lines of 36 (TD2/MRV-B) or 2 lines of 44 (TD3/MRV-A); "
            "pad short lines with '<' fillers and remove stray characters.",
        )
    for i, line in enumerate(lines, 1):
        if not _ALLOWED.match(line):
            raise MrzError(
                f"MRZ line {i} contains characters outside A-Z, 0-9 and '<'.",
                fix="Map OCR artefacts (e.g. '«', 'K<' confusions, punctuation) to '<' or the intended character.",
            )
    fmt = _LAYOUTS[(n, lengths[0])]
    if lines[0].startswith("V"):
        if fmt == "TD3":
            return "MRVA"
        if fmt == "TD2":
            return "MRVB"
    return fmt  # type: ignore[return-value]


# --- repair ------------------------------------------------------------------------------------------


def _force_digits(s: str) -> str:
    """Replace confusable letters by the digit they resemble (for all-numeric positions)."""
    return "".join(_LETTER_TO_DIGIT.get(c, c) for c in s)


class _Repairer:
    def __init__(self) -> None:
        self.repaired: dict[str, str] = {}

    def numeric(self, name: str, value: str, check: str, *, valid_value=lambda v: True) -> tuple[str, str, bool]:
        """Numeric field (dates) with its check digit. Returns (value, check, ok)."""
        ok = _check_char_ok(value, check) and valid_value(value)
        if ok:
            return value, check, True
        new_value, new_check = _force_digits(value), _force_digits(check)
        if (new_value, new_check) != (value, check) and _check_char_ok(new_value, new_check) and valid_value(new_value):
            if new_value != value:
                self.repaired[name] = value
            if new_check != check:
                self.repaired[f"{name}_check_digit"] = check
            return new_value, new_check, True
        return value, check, False

    def document_number(self, name: str, value: str, check: str, *, also=None) -> tuple[str, str, bool]:
        """Alphanumeric field with its check digit. ``also(candidate)`` is a second, independent check
        (the composite check digit): with it, one more substitution may be tried, since a wrong repair
        would have to pass both."""
        if _check_char_ok(value, check):
            return value, check, True
        new_check = _force_digits(check)
        if new_check != check and _check_char_ok(value, new_check):
            self.repaired[f"{name}_check_digit"] = check
            return value, new_check, True
        if not new_check.isdigit():
            return value, check, False
        positions = [i for i, c in enumerate(value) if c in _ALNUM_SWAPS]
        max_subs = _MAX_DOCNUM_SUBSTITUTIONS + (1 if also is not None else 0)
        for k in range(1, max_subs + 1):
            found: set[str] = set()
            for combo in itertools.combinations(positions, k):
                for repl in itertools.product(*(_ALNUM_SWAPS[value[i]] for i in combo)):
                    chars = list(value)
                    for i, r in zip(combo, repl):
                        chars[i] = r
                    cand = "".join(chars)
                    if _check_char_ok(cand, new_check) and (also is None or also(cand, new_check)):
                        found.add(cand)
            if len(found) == 1:
                (cand,) = found
                self.repaired[name] = value
                if new_check != check:
                    self.repaired[f"{name}_check_digit"] = check
                return cand, new_check, True
            if found:  # ambiguous: refuse to guess
                return value, check, False
        return value, check, False


# --- parsing -----------------------------------------------------------------------------------------


def parse_mrz(text_or_lines: str | Sequence[str], *, today: date | None = None) -> MrzResult:
    """Parse and validate an ICAO 9303 MRZ given as text (newline-separated) or as a sequence of lines.

    Raises ``MrzError`` when the text has the wrong number of lines, wrong lengths or illegal characters.
    Check-digit failures do not raise: they are reported in ``checks`` and make ``valid`` False.
    """
    today = today or date.today()
    lines = _normalise(text_or_lines)
    fmt = _detect(lines)
    rep = _Repairer()
    checks: dict[str, bool] = {}

    def valid_birth(v: str) -> bool:
        return _birth_date(v, today) is not None

    def valid_expiry(v: str) -> bool:
        return _expiry_date(v, today) is not None

    if fmt == "TD1":
        l1, l2, l3 = lines
        document_code = l1[0:2].rstrip("<")
        issuing_state = _state(l1[2:5])
        docnum_raw, docnum_check = l1[5:14], l1[14]
        opt1 = l1[15:30]
        long_number = False
        if docnum_check == "<" and opt1[:1] not in ("<", "") and opt1.strip("<"):
            # Long document number (9303 part 5, note j): number continues in the optional data field,
            # followed by its check digit, then fillers.
            ext = opt1.split("<", 1)[0]
            docnum_raw, docnum_check = docnum_raw + ext[:-1], ext[-1]
            opt1 = opt1[len(ext):]
            long_number = True
        docnum, docnum_check, checks["document_number"] = rep.document_number("document_number", docnum_raw, docnum_check)
        dob, dob_c, checks["date_of_birth"] = rep.numeric("date_of_birth", l2[0:6], l2[6], valid_value=valid_birth)
        sex = l2[7]
        exp, exp_c, checks["expiry_date"] = rep.numeric("expiry_date", l2[8:14], l2[14], valid_value=valid_expiry)
        nationality = _state(l2[15:18])
        opt2 = l2[18:29]
        comp_c = _force_digits(l2[29])
        # Keyed on the overflow itself, not len(docnum) > 9: an overflow of just a check digit leaves a
        # 9-character number, and the filler at position 15 must still be in the composite (l1[5:30]).
        if long_number:
            l1_span = docnum[:9] + "<" + docnum[9:] + docnum_check + opt1
        else:
            l1_span = docnum + docnum_check + opt1
        composite_data = l1_span + dob + dob_c + exp + exp_c + opt2
        checks["composite"] = _check_char_ok(composite_data, comp_c)
        if checks["composite"] and comp_c != l2[29]:
            rep.repaired["composite_check_digit"] = l2[29]
        primary, secondary = _names(l3)
        optional_data = (opt1.strip("<") + ("<" if opt1.strip("<") and opt2.strip("<") else "") + opt2.strip("<"))
        optional_data = optional_data.replace("<", " ").strip()
    else:
        l1, l2 = lines
        document_code = l1[0:2].rstrip("<")
        issuing_state = _state(l1[2:5])
        primary, secondary = _names(l1[5:])
        nationality = _state(l2[10:13])
        dob, dob_c, checks["date_of_birth"] = rep.numeric("date_of_birth", l2[13:19], l2[19], valid_value=valid_birth)
        sex = l2[20]
        exp, exp_c, checks["expiry_date"] = rep.numeric("expiry_date", l2[21:27], l2[27], valid_value=valid_expiry)
        width = len(l2)
        also = None
        if fmt in ("TD2", "TD3"):
            tail = l2[28:43] if fmt == "TD3" else l2[28:35]
            comp = _force_digits(l2[43] if fmt == "TD3" else l2[35])
            also = lambda cand, c: _check_char_ok(cand + c + dob + dob_c + exp + exp_c + tail, comp)  # noqa: E731
        docnum, docnum_check, checks["document_number"] = rep.document_number("document_number", l2[0:9], l2[9], also=also)
        if fmt == "TD3":
            opt, opt_raw_c = l2[28:42], l2[42]
            opt_c = _force_digits(opt_raw_c)
            checks["optional"] = _check_char_ok(opt, opt_c, filler_ok=True)
            if checks["optional"] and opt_c != opt_raw_c:
                rep.repaired["optional_check_digit"] = opt_raw_c
            elif not checks["optional"]:
                # alphanumeric like the document number: same guarded O/0-style repair
                opt, opt_c, checks["optional"] = rep.document_number("optional_data", opt, opt_raw_c)
            comp_raw_c = l2[43]
            composite_data = docnum + docnum_check + dob + dob_c + exp + exp_c + opt + opt_c
        elif fmt == "TD2":
            opt, comp_raw_c = l2[28:35], l2[35]
            composite_data = docnum + docnum_check + dob + dob_c + exp + exp_c + opt
        else:  # MRV-A / MRV-B: no composite check digit
            opt, comp_raw_c = l2[28:width], ""
            composite_data = ""
        if comp_raw_c:
            comp_c = _force_digits(comp_raw_c)
            checks["composite"] = _check_char_ok(composite_data, comp_c)
            if checks["composite"] and comp_c != comp_raw_c:
                rep.repaired["composite_check_digit"] = comp_raw_c
        optional_data = opt.replace("<", " ").strip()

    unknown = tuple(
        dict.fromkeys(code for code in (issuing_state, nationality) if code and code not in _VALID_STATES)
    )
    raw_fields = {
        "document_code": document_code,
        "issuing_state": issuing_state,
        "document_number": docnum.rstrip("<"),
        "date_of_birth": dob,
        "sex": sex,
        "expiry_date": exp,
        "nationality": nationality,
        "optional_data": optional_data,
    }
    return MrzResult(
        format=fmt,
        lines=tuple(lines),
        document_code=document_code,
        issuing_state=issuing_state,
        document_number=docnum.rstrip("<"),
        date_of_birth=_birth_date(dob, today),
        sex="X" if sex == "<" else sex,
        expiry_date=_expiry_date(exp, today),
        nationality=nationality,
        primary_identifier=primary,
        secondary_identifier=secondary,
        optional_data=optional_data,
        checks=checks,
        repaired=dict(rep.repaired),
        unknown_state_codes=unknown,
        raw_fields=raw_fields,
    )
