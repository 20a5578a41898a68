"""Specimen identity documents (ICAO 9303 TD3 passport data page, TD1 ID card) for tests and integrators.

``compose_mrz`` writes a valid MRZ for given holder fields; ``render_td3`` / ``render_td1`` print a
document image around a real face (cropped ICAO-style with idproof's own detector), with the MRZ in
OCR-B at the ICAO fixed pitch so that OCR reads it; ``degrade`` adds print/scan/phone-photo effects;
``make_specimen`` does all of it plus the JPEG portrait a chip's DG2 would hold.

Every document says SPECIMEN and defaults to the ICAO specimen holder of the fictitious state Utopia.
Nothing here writes to disk: saving is up to the caller (the ``idproof specimen`` command does it).
"""

from __future__ import annotations

import calendar
import math
import os
import re
import shutil
import subprocess
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from idproof.document.mrz import check_digit
from idproof.errors import IdproofError

__all__ = [
    "TD1_LAYOUT",
    "TD3_LAYOUT",
    "Layout",
    "Specimen",
    "SpecimenError",
    "SpecimenFields",
    "compose_mrz",
    "crop_portrait",
    "default_expiry",
    "degrade",
    "make_specimen",
    "render_td1",
    "render_td3",
    "transliterate",
]

Kind = Literal["TD1", "TD3"]


class SpecimenError(IdproofError):
    """The specimen cannot be made from these inputs (field not representable, no face, no font)."""

    code = "bad_specimen_input"


def default_expiry(today: date | None = None) -> date:
    """Today + 5 years (28 Feb for a 29 Feb today): specimens made now are not expired for a while."""
    today = today or date.today()
    year = today.year + 5
    return today.replace(year=year, day=min(today.day, calendar.monthrange(year, today.month)[1]))


@dataclass(frozen=True)
class SpecimenFields:
    """Holder and document data. Defaults: the ICAO 9303 specimen person of Utopia.

    ``document_code`` None means the usual code for the layout ("P" on TD3, "I" on TD1).
    ``expiry_date`` defaults to :func:`default_expiry` at construction time; pass it explicitly for
    reproducible output.
    """

    document_number: str = "L898902C3"
    primary_identifier: str = "ERIKSSON"
    secondary_identifier: str = "ANNA MARIA"
    date_of_birth: date = date(1974, 8, 12)
    sex: str = "F"
    expiry_date: date = field(default_factory=default_expiry)
    issuing_state: str = "UTO"
    nationality: str = "UTO"
    document_code: str | None = None
    optional_data: str = ""

    def code_for(self, kind: Kind) -> str:
        return (self.document_code or ("P" if kind == "TD3" else "I")).upper()


# --- MRZ composition ---------------------------------------------------------------------------------

# Letters NFKD does not decompose into A-Z + accents (ICAO 9303 part 3, transliteration table).
_SPECIAL_LETTERS = {
    "ß": "SS", "Æ": "AE", "æ": "AE", "Ø": "OE", "ø": "OE", "Œ": "OE", "œ": "OE", "Þ": "TH", "þ": "TH",
    "Đ": "D", "đ": "D", "Ð": "D", "ð": "D", "Ł": "L", "ł": "L", "Ħ": "H", "ħ": "H", "ı": "I", "Ŋ": "N", "ŋ": "N",
}
_APOSTROPHES = "'’ʼ`´"  # 9303: apostrophes are omitted (D'ARTAGNAN -> DARTAGNAN), not turned into fillers
_NAME_WIDTH = {"TD3": 39, "TD1": 30}


def transliterate(name: str) -> str:
    """Name -> MRZ name components: A-Z only, accents stripped, words joined by one '<'."""
    out = []
    for ch in name:
        if ch in _APOSTROPHES:
            continue
        ch = _SPECIAL_LETTERS.get(ch, ch)
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c)).upper()
        out.append(base if re.fullmatch(r"[A-Z]+", base) else "<")  # hyphens, spaces, other scripts
    return "<".join(w for w in "".join(out).split("<") if w)


def _name_field(primary: str, secondary: str, width: int) -> str:
    """Primary<<secondary, truncated per 9303 part 3: secondary identifiers lose characters from the end
    first (keeping at least an initial), then the primary identifier."""
    p, s = transliterate(primary), transliterate(secondary)
    if not p:
        raise SpecimenError(
            "The surname (primary identifier) has no letters that can be written in an MRZ.",
            fix="Give a surname with at least one Latin letter.",
        )
    if not s:
        return p[:width].ljust(width, "<")
    if len(p) + 2 + len(s) > width:
        p = p[: max(1, width - 3)].rstrip("<")
        s = s[: width - len(p) - 2].rstrip("<")
    return f"{p}<<{s}".ljust(width, "<")


def _field(value: str, width: int, what: str, fix: str) -> str:
    v = "<".join(value.upper().split())
    if not re.fullmatch(r"[A-Z0-9<]*", v) or len(v) > width:
        raise SpecimenError(f"The {what} cannot be written in the MRZ (A-Z, 0-9, at most {width} characters).", fix=fix)
    return v


def _state(code: str, what: str) -> str:
    c = code.strip().upper()
    if not re.fullmatch(r"[A-Z]{1,3}", c):
        raise SpecimenError(f"The {what} must be a 1-3 letter ICAO code.", fix=f"Use e.g. 'UTO' (specimen state) or an ISO 3166-1 alpha-3 code for the {what}.")
    return c.ljust(3, "<")


def _cd(s: str) -> str:
    return str(check_digit(s))


def _yymmdd(d: date) -> str:
    return d.strftime("%y%m%d")


def compose_mrz(fields: SpecimenFields, kind: Kind) -> tuple[str, ...]:
    """ICAO 9303 MRZ lines for ``fields``: TD3 (2x44) or TD1 (3x30), all check digits correct.

    TD1 document numbers over 9 characters overflow into the optional data field (9303 part 5):
    the first 9 characters, '<' in the check digit position, then the rest and its check digit.
    Raises :class:`SpecimenError` for values an MRZ cannot hold.
    """
    if kind not in ("TD3", "TD1"):
        raise SpecimenError(f"Unknown document layout {kind!r}.", fix="Use 'TD3' (passport) or 'TD1' (ID card).")
    code = fields.code_for(kind)
    allowed_first = "P" if kind == "TD3" else "IAC"
    if not re.fullmatch(r"[A-Z]{1,2}", code) or code[0] not in allowed_first:
        raise SpecimenError(
            f"Document code {code!r} does not fit a {kind} document.",
            fix="Use 'P' for a TD3 passport, 'I' or 'ID' for a TD1 card.",
        )
    sex = fields.sex.strip().upper()
    if sex not in ("F", "M", "X", "<"):
        raise SpecimenError("Sex must be F, M or X.", fix="Pass sex as 'F', 'M' or 'X' (unspecified).")
    sex = "<" if sex == "X" else sex
    if fields.date_of_birth > date.today():
        raise SpecimenError("The date of birth is in the future.", fix="Give a date of birth in the past.")
    if fields.expiry_date <= fields.date_of_birth:
        raise SpecimenError("The expiry date is not after the date of birth.", fix="Give an expiry date after the date of birth.")
    state, nat = _state(fields.issuing_state, "issuing state"), _state(fields.nationality, "nationality")
    number = _field(fields.document_number, 23 if kind == "TD1" else 9, "document number",
                    "Use letters and digits only: at most 9 for TD3, 23 for TD1.")
    if not number or "<" in number:
        raise SpecimenError("The document number must be letters and digits without spaces.", fix="Pass e.g. 'L898902C3'.")
    opt = _field(fields.optional_data, 26, "optional data", "Use at most 14 letters/digits (TD3) or 26 (TD1, split at a space).")
    dob, exp = _yymmdd(fields.date_of_birth), _yymmdd(fields.expiry_date)
    dob_f, exp_f = dob + _cd(dob), exp + _cd(exp)
    names = _name_field(fields.primary_identifier, fields.secondary_identifier, _NAME_WIDTH[kind])

    if kind == "TD3":
        if len(opt) > 14:
            raise SpecimenError("The optional data is longer than 14 characters, the TD3 maximum.", fix="Shorten the optional (personal number) data.")
        num_f = number.ljust(9, "<") + _cd(number.ljust(9, "<"))
        opt_f = opt.ljust(14, "<") + (_cd(opt) if opt else "<")  # 9303: filler check over an empty field
        l1 = code.ljust(2, "<") + state + names
        l2 = num_f + nat + dob_f + sex + exp_f + opt_f
        l2 += _cd(num_f + dob_f + exp_f + opt_f)
        return l1, l2

    if len(number) > 9:
        rest = number[9:] + _cd(number)  # check digit over the whole number
        num_f, room = number[:9] + "<", 15 - len(rest) - 1  # '<' separates the optional data
    else:
        rest, num_f, room = "", number.ljust(9, "<") + _cd(number.ljust(9, "<")), 15
    opt1, opt2 = _split_td1_optional(opt, room)
    opt1_f = (rest + ("<" + opt1 if rest and opt1 else opt1)).ljust(15, "<")
    l1 = code.ljust(2, "<") + state + num_f + opt1_f
    l2_head = dob_f + sex + exp_f + nat + opt2.ljust(11, "<")
    l2 = l2_head + _cd(l1[5:30] + l2_head[0:7] + l2_head[8:15] + l2_head[18:29])
    return l1, l2, names


def _split_td1_optional(opt: str, room: int) -> tuple[str, str]:
    """Optional data over TD1 line 1 (``room`` characters) and line 2 (11). A reader joins the two
    parts with a space, so a split is only made at a word boundary ('<')."""
    if len(opt) <= room:
        return opt, ""
    if len(opt) <= 11:
        return "", opt
    for i in range(min(room, len(opt) - 1), 0, -1):
        if opt[i] == "<" and len(opt) - i - 1 <= 11:
            return opt[:i], opt[i + 1:]
    raise SpecimenError(
        "The optional data does not fit a TD1 MRZ.",
        fix="Shorten it, or put a space where it may be split (up to 15 characters on line 1, 11 on line 2).",
    )


# --- fonts -------------------------------------------------------------------------------------------

_OCRB_PATHS = ("/usr/share/fonts/opentype/ocr-b/OCRB.otf", "/usr/share/fonts/truetype/ocr-b/OCRB.ttf")
_DEJAVU_DIR = Path("/usr/share/fonts/truetype/dejavu")


def _fc_match(pattern: str) -> str | None:
    if not shutil.which("fc-match"):
        return None
    try:
        out = subprocess.run(["fc-match", "-f", "%{file}", pattern], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _ocrb_path() -> str:
    env = os.environ.get("IDPROOF_OCRB_FONT")
    if env:
        if not Path(env).is_file():
            raise SpecimenError(f"IDPROOF_OCRB_FONT points to a missing file ({Path(env).name!r}).", fix="Point it at an OCR-B .otf/.ttf file, or unset it.")
        return env
    for p in _OCRB_PATHS:
        if Path(p).is_file():
            return p
    found = _fc_match("OCRB")  # fc-match always answers; only trust it if it found an OCR-B file
    if found and "ocr" in Path(found).name.lower():
        return found
    raise SpecimenError("The OCR-B font for the MRZ is not installed.", fix="Install Debian package fonts-ocr-b (or set IDPROOF_OCRB_FONT to an OCR-B font file).")


@cache
def _sans_path(bold: bool) -> str | None:
    p = _DEJAVU_DIR / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")
    if p.is_file():
        return str(p)
    found = _fc_match("DejaVu Sans:bold" if bold else "DejaVu Sans")
    return found if found and found.lower().endswith((".ttf", ".otf")) else None


@cache
def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = _sans_path(bold)
    return ImageFont.truetype(path, size) if path else ImageFont.load_default(size)


def _ocrb(pitch_px: float) -> ImageFont.FreeTypeFont:
    """OCR-B sized so one character advance equals the MRZ pitch (OCR-B's natural proportions then give
    a character height of about 2.5 mm, as on real documents)."""
    return _ocrb_at(_ocrb_path(), pitch_px)  # path looked up each time: IDPROOF_OCRB_FONT may change


@cache
def _ocrb_at(path: str, pitch_px: float) -> ImageFont.FreeTypeFont:
    probe = ImageFont.truetype(path, 100)
    return ImageFont.truetype(path, max(8, round(100 * pitch_px / probe.getlength("<"))))


# --- layout ------------------------------------------------------------------------------------------

PX_PER_MM = 12.0  # ~305 dpi: a good flatbed scan
MRZ_PITCH_MM = 2.54  # ICAO 9303 part 3: OCR-B size 1 at 10 characters per inch

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels


def _mm(v: float) -> int:
    return round(v * PX_PER_MM)


def _box_mm(x: float, y: float, w: float, h: float, dx: float = 0, dy: float = 0) -> Box:
    return _mm(x + dx), _mm(y + dy), _mm(x + dx + w), _mm(y + dy + h)


@dataclass(frozen=True)
class Layout:
    """Where things are in a rendered (undegraded) specimen, in pixels: for tests and OCR experiments."""

    size: tuple[int, int]  # width, height of the whole image
    portrait: Box
    ghost: Box
    mrz: Box  # the band the MRZ characters are printed in (with a little margin)
    mrz_lines_y: tuple[int, ...]  # baseline of each MRZ line
    mrz_x0: int  # left edge of the first character cell


_TD3_W, _TD3_H = 125.0, 88.0
_TD1_W, _TD1_H = 85.6, 54.0
_TD1_MARGIN = 8.0  # white "scanner glass" around the two card sides
_TD1_BACK_DY = _TD1_MARGIN * 2 + _TD1_H


def _mrz_geometry(width_mm: float, height_mm: float, chars: int, centres_from_bottom: tuple[float, ...], dy: float = 0, dx: float = 0):
    x0 = (width_mm - chars * MRZ_PITCH_MM) / 2
    cap = 2.5
    baselines = tuple(_mm(dy + height_mm - c + cap / 2) for c in centres_from_bottom)
    top = dy + height_mm - max(centres_from_bottom) - cap / 2 - 1.5
    bottom = dy + height_mm - min(centres_from_bottom) + cap / 2 + 1.5
    box = (_mm(dx + x0 - 2), _mm(top), _mm(dx + x0 + chars * MRZ_PITCH_MM + 2), _mm(bottom))
    return _mm(dx + x0), baselines, box


_td3_x0, _td3_bl, _td3_box = _mrz_geometry(_TD3_W, _TD3_H, 44, (12.0, 6.9))
TD3_LAYOUT = Layout(
    size=(_mm(_TD3_W), _mm(_TD3_H)),
    portrait=_box_mm(5.0, 17.0, 32.0, 32.0 * 45 / 35),
    ghost=_box_mm(102.0, 30.0, 18.0, 18.0 * 45 / 35),
    mrz=_td3_box,
    mrz_lines_y=_td3_bl,
    mrz_x0=_td3_x0,
)

_td1_x0, _td1_bl, _td1_box = _mrz_geometry(_TD1_W, _TD1_H, 30, (13.4, 9.0, 4.6), dy=_TD1_BACK_DY, dx=_TD1_MARGIN)
TD1_LAYOUT = Layout(
    size=(_mm(_TD1_W + 2 * _TD1_MARGIN), _mm(2 * _TD1_H + 3 * _TD1_MARGIN)),
    portrait=_box_mm(4.0, 11.0, 23.0, 23.0 * 45 / 35, _TD1_MARGIN, _TD1_MARGIN),
    ghost=_box_mm(67.0, 29.0, 14.0, 14.0 * 45 / 35, _TD1_MARGIN, _TD1_MARGIN),
    mrz=_td1_box,
    mrz_lines_y=_td1_bl,
    mrz_x0=_td1_x0,
)


# --- portrait ----------------------------------------------------------------------------------------

PORTRAIT_SIZE = (420, 540)  # 35 x 45 mm at 12 px/mm: the crop kept for DG2 and scaled into each layout


def crop_portrait(face_rgb: np.ndarray, *, what: str = "the face image", size: tuple[int, int] = PORTRAIT_SIZE) -> np.ndarray:
    """ICAO-style portrait from a photo: the largest face, head (crown to chin) ~72% of the height,
    35:45 aspect, eyes near 44% from the top. Areas beyond the photo become light grey."""
    from idproof.face.detect import detect_faces

    faces = detect_faces(face_rgb)
    if not faces:
        raise SpecimenError(f"No face was found in {what}.", fix="Use a sharp, frontal photo of one person's face.")
    f = faces[0]
    # The detector's box runs from about the hairline to the chin; the crown is ~20% of its height above.
    crown, chin = f.y - 0.2 * f.height, f.y + f.height
    crop_h = (chin - crown) / 0.72
    crop_w = crop_h * size[0] / size[1]
    cx = float(np.mean(f.landmarks[:, 0]))
    x0, y0 = cx - crop_w / 2, crown - 0.08 * crop_h
    # One affine warp does crop + scale + padding without building a padded copy of a large photo.
    s = size[0] / crop_w
    m = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]], dtype=np.float64)
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    return cv2.warpAffine(face_rgb, m, size, flags=interp, borderMode=cv2.BORDER_CONSTANT, borderValue=(225, 225, 225))


def _portrait_jpeg(portrait: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(portrait, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


# --- drawing -----------------------------------------------------------------------------------------


def _guilloche(w: int, h: int, base: tuple[int, int, int], ink: tuple[int, int, int], ink2: tuple[int, int, int], seed_phase: float) -> np.ndarray:
    """Light security-print look: families of interleaved sine waves and a rosette (deterministic)."""
    img = np.full((h, w, 3), base, np.uint8)
    xs = np.arange(0, w + 8, 4, dtype=np.float64)
    for k in range(-4, h // 14 + 4):
        for amp, lam, ph, col in ((9, 180, 0.0, ink), (7, 130, 1.7, ink2)):
            ys = k * 14 + amp * np.sin(2 * np.pi * xs / lam + ph + seed_phase + k * 0.35)
            pts = np.stack([xs, ys], 1).round().astype(np.int32)
            cv2.polylines(img, [pts], False, col, 1, cv2.LINE_AA)
    cx, cy, r = w * 0.70, h * 0.38, min(w, h) * 0.27
    t = np.linspace(0, 2 * np.pi, 4000)
    for i in range(14):
        rr = r * (0.55 + 0.45 * np.cos(11 * t + i * np.pi / 14))
        pts = np.stack([cx + rr * np.cos(t + i * 0.07), cy + rr * np.sin(t + i * 0.07)], 1).round().astype(np.int32)
        cv2.polylines(img, [pts], True, ink2, 1, cv2.LINE_AA)
    return img


def _paste(canvas: Image.Image, img: np.ndarray, box: Box) -> None:
    w, h = box[2] - box[0], box[3] - box[1]
    canvas.paste(Image.fromarray(cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)), box[:2])


def _paste_ghost(canvas: Image.Image, portrait: np.ndarray, box: Box, strength: float = 0.55) -> None:
    """A small faded greyscale copy of the portrait, blended into the background as on real documents."""
    w, h = box[2] - box[0], box[3] - box[1]
    g = cv2.cvtColor(cv2.resize(portrait, (w, h), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY).astype(np.float32)
    under = np.asarray(canvas.crop(box), np.float32)
    tint = np.array([0.95, 0.97, 1.0], np.float32)  # slightly cool, like a laser-engraved ghost
    out = under * (1 - strength) + (g[..., None] * tint) * strength
    canvas.paste(Image.fromarray(np.clip(out, 0, 255).astype(np.uint8)), box[:2])


def _text_fit(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, size: int, max_w: int, *, bold=False, fill=(20, 20, 28)) -> None:
    """Draw text, shrinking it (down to 60%) so it stays within ``max_w`` pixels."""
    s = size
    while s > size * 0.6 and draw.textlength(text, font=_font(s, bold)) > max_w:
        s -= 1
    draw.text(xy, text, font=_font(s, bold), fill=fill)


def _field_block(draw: ImageDraw.ImageDraw, x_mm: float, y_mm: float, label: str, value: str, max_w_mm: float, dx=0.0, dy=0.0) -> None:
    draw.text((_mm(x_mm + dx), _mm(y_mm + dy)), label, font=_font(_mm(1.5)), fill=(55, 80, 115))
    _text_fit(draw, (_mm(x_mm + dx), _mm(y_mm + dy + 2.0)), value, _mm(2.6), _mm(max_w_mm))


def _draw_mrz(draw: ImageDraw.ImageDraw, lines: tuple[str, ...], layout: Layout) -> None:
    """Each character centred in its own 2.54 mm cell on a shared baseline, as an MRZ printer does."""
    pitch = MRZ_PITCH_MM * PX_PER_MM
    font = _ocrb(pitch)
    for line, y in zip(lines, layout.mrz_lines_y):
        for i, ch in enumerate(line):
            draw.text((layout.mrz_x0 + (i + 0.5) * pitch, y), ch, font=font, fill=(12, 12, 16), anchor="ms")


def _specimen_stamp(canvas: Image.Image, centre: tuple[int, int], size_px: int, angle: float) -> None:
    """A faint red 'SPECIMEN' overprint: these documents must never pass for real ones."""
    font = _font(size_px, True)
    tw = int(ImageDraw.Draw(canvas).textlength("SPECIMEN", font=font))
    layer = Image.new("L", (tw + 20, size_px + 30), 0)
    ImageDraw.Draw(layer).text((10, 5), "SPECIMEN", font=font, fill=70)
    layer = layer.rotate(angle, expand=True, resample=Image.BICUBIC)
    red = Image.new("RGB", layer.size, (200, 40, 40))
    canvas.paste(red, (centre[0] - layer.width // 2, centre[1] - layer.height // 2), layer)


def _fmt_date(d: date) -> str:
    return d.strftime("%d %b %Y").upper()


def _display_sex(sex: str) -> str:
    s = sex.strip().upper()
    return "X" if s in ("X", "<") else s


def _draw_td3(portrait: np.ndarray, fields: SpecimenFields, mrz: tuple[str, ...], ghost: bool) -> np.ndarray:
    lay = TD3_LAYOUT
    w, h = lay.size
    bg = _guilloche(w, h, (233, 240, 232), (200, 222, 212), (222, 204, 214), 0.0)
    mrz_top = _mm(_TD3_H - 23.2)  # ICAO MRZ clear zone: plain, so nothing competes with the OCR-B
    bg[mrz_top:] = (bg[mrz_top:].astype(np.float32) * 0.25 + 245 * 0.75).astype(np.uint8)
    canvas = Image.fromarray(bg)
    d = ImageDraw.Draw(canvas)
    d.text((_mm(42), _mm(3.5)), "UTOPIA", font=_font(_mm(4.2), True), fill=(30, 60, 100))
    d.text((_mm(80), _mm(5.0)), "PASSPORT / PASSEPORT", font=_font(_mm(2.4), True), fill=(30, 60, 100))
    d.text((_mm(5), _mm(12.0)), "SPECIMEN - NOT A TRAVEL DOCUMENT", font=_font(_mm(1.6)), fill=(150, 50, 50))
    _paste(canvas, portrait, lay.portrait)
    if ghost:
        _paste_ghost(canvas, portrait, lay.ghost)
    _field_block(d, 42, 14.5, "Type / Type", fields.code_for("TD3"), 12)
    _field_block(d, 56, 14.5, "Code / Code", fields.issuing_state.upper(), 16)
    _field_block(d, 75, 14.5, "Passport No. / N° du passeport", fields.document_number.upper(), 45)
    _field_block(d, 42, 21.5, "Surname / Nom", fields.primary_identifier.upper(), 58)
    _field_block(d, 42, 28.5, "Given names / Prénoms", fields.secondary_identifier.upper(), 58)
    _field_block(d, 42, 35.5, "Nationality / Nationalité", "UTOPIAN" if fields.nationality.upper() == "UTO" else fields.nationality.upper(), 58)
    _field_block(d, 42, 42.5, "Date of birth / Date de naissance", _fmt_date(fields.date_of_birth), 32)
    _field_block(d, 80, 42.5, "Sex / Sexe", _display_sex(fields.sex), 18)
    _field_block(d, 42, 49.5, "Date of expiry / Date d'expiration", _fmt_date(fields.expiry_date), 32)
    _field_block(d, 80, 49.5, "Authority / Autorité", "SPECIMEN", 20)
    _specimen_stamp(canvas, (_mm(70), _mm(40)), _mm(7), 12)
    _draw_mrz(d, mrz, lay)
    return np.asarray(canvas).copy()


def _card(w: int, h: int, base, ink, ink2, phase: float) -> tuple[Image.Image, Image.Image]:
    card = Image.fromarray(_guilloche(w, h, base, ink, ink2, phase))
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, w - 1, h - 1), radius=_mm(3.18), fill=255)  # ID-1 corner radius
    return card, mask


def _draw_td1(portrait: np.ndarray, fields: SpecimenFields, mrz: tuple[str, ...], ghost: bool) -> np.ndarray:
    lay = TD1_LAYOUT
    page = Image.new("RGB", lay.size, (246, 246, 244))
    cw, ch = _mm(_TD1_W), _mm(_TD1_H)
    m = _mm(_TD1_MARGIN)
    pd = ImageDraw.Draw(page)
    for oy in (m, _mm(_TD1_BACK_DY)):  # a soft edge shadow, as a scanner lid leaves
        pd.rounded_rectangle((m + 3, oy + 4, m + cw + 3, oy + ch + 4), radius=_mm(3.18), fill=(215, 215, 212))

    front, mask = _card(cw, ch, (230, 237, 246), (198, 214, 234), (226, 208, 222), 0.6)
    d = ImageDraw.Draw(front)
    d.text((_mm(4), _mm(2.2)), "UTOPIA", font=_font(_mm(3.6), True), fill=(30, 60, 110))
    d.text((_mm(31), _mm(3.2)), "IDENTITY CARD / CARTE D'IDENTITÉ", font=_font(_mm(2.0), True), fill=(30, 60, 110))
    d.text((_mm(31), _mm(6.4)), "SPECIMEN", font=_font(_mm(1.5)), fill=(150, 50, 50))
    p = lay.portrait
    _paste(front, portrait, (p[0] - m, p[1] - m, p[2] - m, p[3] - m))
    if ghost:
        g = lay.ghost
        _paste_ghost(front, portrait, (g[0] - m, g[1] - m, g[2] - m, g[3] - m))
    _field_block(d, 30, 10.0, "Surname / Nom", fields.primary_identifier.upper(), 52)
    _field_block(d, 30, 16.5, "Given names / Prénoms", fields.secondary_identifier.upper(), 52)
    _field_block(d, 30, 23.0, "Sex / Sexe", _display_sex(fields.sex), 9)
    _field_block(d, 41, 23.0, "Nationality", fields.nationality.upper(), 12)
    _field_block(d, 55, 23.0, "Date of birth", _fmt_date(fields.date_of_birth), 28)
    _field_block(d, 30, 29.5, "Document No.", fields.document_number.upper(), 35)
    _field_block(d, 30, 36.0, "Date of expiry", _fmt_date(fields.expiry_date), 35)
    _specimen_stamp(front, (_mm(48), _mm(46)), _mm(5), 8)
    page.paste(front, (m, m), mask)

    back, mask = _card(cw, ch, (236, 236, 244), (210, 212, 232), (226, 214, 222), 2.1)
    arr = np.asarray(back).copy()
    mrz_top = _mm(_TD1_H - 17.9)  # TD1 MRZ zone: the bottom 17.9 mm of the back, kept plain
    arr[mrz_top:] = (arr[mrz_top:].astype(np.float32) * 0.25 + 245 * 0.75).astype(np.uint8)
    back = Image.fromarray(arr)
    d = ImageDraw.Draw(back)
    d.text((_mm(4), _mm(3)), "UTOPIA - SPECIMEN", font=_font(_mm(2.2), True), fill=(30, 60, 110))
    _field_block(d, 4, 8, "Authority / Autorité", "SPECIMEN", 40)
    _field_block(d, 4, 15, "Card access number", "123456", 30)
    page.paste(back, (m, _mm(_TD1_BACK_DY)), mask)
    _draw_mrz(ImageDraw.Draw(page), mrz, lay)
    return np.asarray(page).copy()


def render_td3(face_rgb: np.ndarray, fields: SpecimenFields | None = None, *, ghost: bool = True) -> np.ndarray:
    """Passport data page (ID-3, 125 x 88 mm at 12 px/mm = 1500 x 1056 RGB) around the largest face."""
    fields = fields or SpecimenFields()
    return _draw_td3(crop_portrait(face_rgb), fields, compose_mrz(fields, "TD3"), ghost)


def render_td1(face_rgb: np.ndarray, fields: SpecimenFields | None = None, *, ghost: bool = True) -> np.ndarray:
    """ID card (ID-1, 85.6 x 54 mm) front above back, as one scan of both sides (1219 x 1584 RGB)."""
    fields = fields or SpecimenFields()
    return _draw_td1(crop_portrait(face_rgb), fields, compose_mrz(fields, "TD1"), ghost)


# --- degradation -------------------------------------------------------------------------------------


def degrade(
    img: np.ndarray,
    *,
    rng: np.random.Generator,
    rotation_deg: float = 0.0,
    perspective: float = 0.0,
    blur_sigma: float = 0.0,
    noise_sigma: float = 0.0,
    jpeg_quality: int | None = None,
    scan_texture: bool = False,
    upside_down: bool = False,
) -> np.ndarray:
    """Print/scan/phone-photo effects on an RGB uint8 image; the same rng seed gives the same output.

    Rotation (degrees, counter-clockwise) and perspective (0..0.3: how far corners move, as a fraction
    of the size) place the document on a neutral "table" with a margin, so nothing is cut off.
    """
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise SpecimenError("degrade() needs an RGB uint8 image.", fix="Pass an (H, W, 3) uint8 array.")
    if not 0 <= perspective <= 0.3:
        raise SpecimenError("perspective must be between 0 and 0.3.", fix="Use e.g. 0.05 for a slightly tilted phone photo.")
    if jpeg_quality is not None and not 1 <= jpeg_quality <= 100:
        raise SpecimenError("JPEG quality must be between 1 and 100.", fix="Use e.g. 70.")
    out = img[::-1, ::-1].copy() if upside_down else img.copy()

    if rotation_deg or perspective:
        out = _on_table(out, rng, rotation_deg, perspective)
    if scan_texture:
        out = _scan_texture(out, rng)
    if blur_sigma > 0:
        out = cv2.GaussianBlur(out, (0, 0), blur_sigma)
    if noise_sigma > 0:
        out = np.clip(out + rng.normal(0, noise_sigma, out.shape), 0, 255).astype(np.uint8)
    if jpeg_quality is not None:
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
        assert ok
        out = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(out)


def _on_table(img: np.ndarray, rng: np.random.Generator, rotation_deg: float, perspective: float) -> np.ndarray:
    h, w = img.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    jitter = rng.uniform(0, perspective, (4, 2)) * [w, h] * [[1, 1], [-1, 1], [-1, -1], [1, -1]]  # corners move inwards
    a = math.radians(rotation_deg)
    rot = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    centre = np.array([w / 2, h / 2])
    dst = (src + jitter - centre) @ rot.T
    margin = 0.06 * max(w, h)
    dst = dst - dst.min(0) + margin
    out_w, out_h = (np.ceil(dst.max(0) + margin)).astype(int)
    m = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    warped = cv2.warpPerspective(img, m, (int(out_w), int(out_h)), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.full((h, w), 255, np.uint8), m, (int(out_w), int(out_h)), flags=cv2.INTER_LINEAR)
    # Neutral grey-brown table with a gentle light falloff and fine grain.
    yy, xx = np.mgrid[0:out_h, 0:out_w].astype(np.float32)
    light = 1.0 - 0.12 * (((xx / out_w) - 0.4) ** 2 + ((yy / out_h) - 0.35) ** 2)
    table = np.array([150, 142, 132], np.float32) * light[..., None] + rng.normal(0, 3, (out_h, out_w, 1))
    alpha = (mask.astype(np.float32) / 255)[..., None]
    return np.clip(warped * alpha + table * (1 - alpha), 0, 255).astype(np.uint8)


def _scan_texture(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Uneven illumination, paper grain and faint scanner streaks."""
    h, w = img.shape[:2]
    low = cv2.resize(rng.normal(0, 1, (4, 4)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    grain = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 0.8)
    streaks = np.repeat(rng.normal(0, 1, (1, w)).astype(np.float32), h, 0)
    gain = 1.0 + 0.04 * low
    out = img.astype(np.float32) * gain[..., None] + (4 * grain + 1.5 * streaks)[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


# --- everything at once ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Specimen:
    image: np.ndarray = field(repr=False)  # RGB uint8
    mrz_lines: tuple[str, ...]
    fields: SpecimenFields
    kind: Kind
    portrait_jpeg: bytes = field(repr=False)  # the cropped portrait, for a chip's DG2


def make_specimen(
    face_rgb: np.ndarray,
    fields: SpecimenFields | None = None,
    *,
    kind: Kind = "TD3",
    degrade_opts: Mapping[str, Any] | None = None,
    seed: int = 0,
    ghost: bool = True,
    what: str = "the face image",
) -> Specimen:
    """Render a specimen document around the face in ``face_rgb`` and optionally degrade it.

    ``degrade_opts`` are :func:`degrade` keyword arguments (without ``rng``: it comes from ``seed``).
    ``what`` names the face input in the error raised when it shows no face.
    """
    fields = fields or SpecimenFields()
    lines = compose_mrz(fields, kind)  # validate fields before the (slower) face work
    portrait = crop_portrait(face_rgb, what=what)
    draw = _draw_td3 if kind == "TD3" else _draw_td1
    image = draw(portrait, fields, lines, ghost)
    if degrade_opts:
        image = degrade(image, rng=np.random.default_rng(seed), **dict(degrade_opts))
    return Specimen(image=image, mrz_lines=lines, fields=fields, kind=kind, portrait_jpeg=_portrait_jpeg(portrait))
