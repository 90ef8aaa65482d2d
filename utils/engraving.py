"""Sheet music for a cover: two hands, quantised to the beat grid, engraved with verovio.

The notes come from the cover's beat grid (``utils.midi.GridNotes``: half-beat steps), so there is nothing to
quantise by guesswork: a beat is a quarter note, a step an eighth, and bar lines fall every four beats from the
first tracked beat, as Pop2Piano arranges. music21 builds the score (measures, ties across bar lines, beams,
rests) and writes MusicXML; verovio lays the pages out as SVG; cairosvg turns the pages into PNG and PDF.
"""

from __future__ import annotations

import functools
import io
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from utils.notes import BEATS_PER_BAR, STEPS_PER_BEAT, GridNotes
from utils.words import CJK, font_family
from utils.words import words as said

logger = logging.getLogger(__name__)

MAX_NOTES_PER_HAND = 4  # the Easier version's limit of notes one hand plays at once
MAX_HAND_SPAN = 16  # semitones: a major tenth, the widest a hand is asked to stretch in the Easier version
START_CENTERS = (67, 48)  # right hand around G4, left hand around C3
CENTER_MEMORY = 0.7  # how much a hand's position remembers where it was (0 = jump to each chord)
PAPERS = {"a4": (210.0, 297.0), "letter": (215.9, 279.4)}  # width, height in millimetres
DEFAULT_PAPER = "a4"
PREVIEW_DPI = 150  # the page pictures' resolution (A4: 1240 px wide)
# Margins in millimetres, every side at least 12 mm; the top and foot hold our own title and credit lines.
MARGINS_MM = {"left": 18.0, "right": 15.0, "top": 32.0, "bottom": 22.0}
TITLE_MM, SUBTITLE_MM, FOOT_MM = 7.0, 4.2, 2.6  # type sizes
VEROVIO_OPTIONS = {
    "scale": 45,
    "adjustPageHeight": False,
    "breaks": "auto",
    "header": "none",
    "footer": "none",
}


def check_paper(paper: str | None) -> str:
    """A paper size name ("a4" or "letter", any case; empty = A4); raises ValueError otherwise."""
    value = (paper or DEFAULT_PAPER).strip().lower()
    if value not in PAPERS:
        raise ValueError(f"Paper must be A4 or Letter, got {paper!r}.")
    return value


@dataclass(frozen=True)
class Hands:
    """Which hand plays each note: ``right`` [N] bool over the grid's notes (False = left hand)."""

    right: np.ndarray


def onset_groups(grid: GridNotes) -> list[np.ndarray]:
    """Indices of the notes starting together, group by group in time order."""
    order = np.lexsort((grid.pitches, grid.onsets))
    if order.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(grid.onsets[order])) + 1
    return np.split(order, cuts)


def split_hands(grid: GridNotes) -> Hands:
    """Give each note to a hand, as a pianist would read the arrangement.

    Not a fixed split at middle C: each hand has a position that follows what it plays. For every chord (notes
    starting together, low to high) the split that keeps both hands closest to where they are is chosen, with
    the lowest notes to the left hand and the highest to the right, a hand never asked to span more than a tenth
    or play more than five notes when the other hand can take them. A line that wanders across middle C stays
    in one hand instead of jumping between staves.
    """
    right = np.zeros(len(grid), dtype=bool)
    rh, lh = map(float, START_CENTERS)
    for group in onset_groups(grid):
        pitches = grid.pitches[group].astype(float)  # ascending within the group
        best, best_cost = 0, np.inf
        for k in range(pitches.size + 1):  # notes [0, k) to the left hand, [k, n) to the right
            left_part, right_part = pitches[:k], pitches[k:]
            cost = np.abs(left_part - lh).sum() + np.abs(right_part - rh).sum()
            for part in (left_part, right_part):
                if part.size and part[-1] - part[0] > MAX_HAND_SPAN:
                    cost += 1000.0
                if part.size > 5:
                    cost += 1000.0
            if cost < best_cost:
                best, best_cost = k, cost
        right[group[best:]] = True
        if best > 0:
            lh = CENTER_MEMORY * lh + (1 - CENTER_MEMORY) * pitches[:best].mean()
        if best < pitches.size:
            rh = CENTER_MEMORY * rh + (1 - CENTER_MEMORY) * pitches[best:].mean()
        if rh - lh < 7:  # keep the hands apart so the next chord is shared sensibly
            middle = (rh + lh) / 2
            rh, lh = middle + 3.5, middle - 3.5
    return Hands(right)


def hard_places(grid: GridNotes, hands: Hands) -> int:
    """How many chords (one hand, one onset) ask for more than 4 notes or a span wider than a tenth."""
    count = 0
    for group in onset_groups(grid):
        for side in (True, False):
            part = grid.pitches[group][hands.right[group] == side]
            if part.size > MAX_NOTES_PER_HAND or (part.size and part.max() - part.min() > MAX_HAND_SPAN):
                count += 1
    return count


def easier(grid: GridNotes, hands: Hands) -> tuple[GridNotes, Hands]:
    """Thin the arrangement so each hand plays at most 4 notes at once, within a tenth.

    The right hand keeps its top note (the tune), the left hand its bottom note (the bass); each then keeps the
    notes nearest to that anchor that still fit the span, up to four.
    """
    keep = np.zeros(len(grid), dtype=bool)
    for group in onset_groups(grid):
        for side in (True, False):
            members = group[hands.right[group] == side]
            if members.size == 0:
                continue
            pitches = grid.pitches[members]
            anchor = members[np.argmax(pitches)] if side else members[np.argmin(pitches)]
            ranked = sorted(members, key=lambda i: abs(int(grid.pitches[i]) - int(grid.pitches[anchor])))
            chosen: list[int] = []
            for i in ranked:
                candidate = grid.pitches[[*chosen, i]]
                if len(chosen) < MAX_NOTES_PER_HAND and candidate.max() - candidate.min() <= MAX_HAND_SPAN:
                    chosen.append(i)
            keep[chosen] = True
    return grid.subset(keep), Hands(hands.right[keep])


def spelled_chord(pitches: tuple[int, ...]) -> list:
    """Fresh music21 Pitches of a chord of MIDI ``pitches``, spelled as ``chord.Chord(pitches)`` spells them.

    music21 spells a chord given as numbers by trying every enharmonic of every note (3^n spellings); a piece
    repeats its chords, so each spelling is found once and copied: building the score of a 3.5-minute rag (1,276
    chords) took 2.6 s, and 0.8 s so, with the same MusicXML."""
    import copy

    return [copy.deepcopy(p) for p in _spelling(pitches)]


@functools.lru_cache(maxsize=4096)
def _spelling(pitches: tuple[int, ...]) -> tuple:
    from music21 import chord

    return tuple(chord.Chord(list(pitches)).pitches)


def build_score(grid: GridNotes, hands: Hands, bpm: float, title: str, credit: str, subtitle: str = ""):
    """A music21 Score: two PartStaffs (right hand treble, left hand bass) in 4/4, key signature estimated.

    Each hand reads as a sequence of chords: notes starting together are one chord, held until the hand's next
    chord or until they end, whichever comes first; gaps are rests. music21 makes the measures, ties across bar
    lines and beams.

    Args:
        grid: the notes on the half-beat grid (step 0 = the first beat of bar 1).
        hands: which hand plays each note.
        bpm: the tempo mark.
        title: the score's title (the work title in MusicXML).
        credit: the credit line (provenance), written as the score's rights line.
        subtitle: e.g. the arranger style, written as the arranger.
    """
    from music21 import chord, clef, expressions, key, layout, metadata, meter, note, stream

    quarter_per_step = 1.0 / STEPS_PER_BEAT
    parts = []
    for side, staff_clef in ((True, clef.TrebleClef()), (False, clef.BassClef())):
        part = stream.PartStaff(id="RH" if side else "LH")
        part.partName = ""  # the brace says "Piano"
        part.partAbbreviation = ""
        part.insert(0, staff_clef)
        sub = grid.subset(hands.right == side)
        groups = onset_groups(sub)
        for index, group in enumerate(groups):
            start = int(sub.onsets[group[0]])
            end = int(sub.offsets[group].max())
            if index + 1 < len(groups):
                end = min(end, int(sub.onsets[groups[index + 1][0]]))
            length = (end - start) * quarter_per_step
            pitches = sorted(int(p) for p in sub.pitches[group])
            element = note.Note(pitches[0]) if len(pitches) == 1 else chord.Chord(spelled_chord(tuple(pitches)))
            element.quarterLength = length
            element.volume.velocity = int(sub.velocities[group].max())
            part.insert(start * quarter_per_step, element)
        parts.append(part)

    score = stream.Score()
    score.metadata = metadata.Metadata()
    score.metadata.title = title
    score.metadata.copyright = credit
    if subtitle:
        score.metadata.arranger = subtitle
    estimated = estimate_key(grid)
    for i, part in enumerate(parts):
        part.insert(0, meter.TimeSignature(f"{BEATS_PER_BAR}/4"))
        part.insert(0, key.KeySignature(estimated.sharps))
        if i == 0:  # in words: the engraving's fonts have no note glyph for a "♩ = 96" metronome mark
            mark = expressions.TextExpression(f"{round(float(bpm))} BPM")
            mark.placement = "above"
            part.insert(0, mark)
        score.insert(0, part)
    score.insert(0, layout.StaffGroup(parts, symbol="brace", barTogether=True, name="Piano"))
    end = float(np.ceil(max(p.highestTime for p in parts) / BEATS_PER_BAR) * BEATS_PER_BAR) or BEATS_PER_BAR
    for part in parts:  # rests in every gap, to the end of the piece, so each bar reads complete
        part.makeRests(fillGaps=True, inPlace=True, refStreamOrTimeRange=[0.0, end])
    score.makeNotation(inPlace=True)
    return score


def estimate_key(grid: GridNotes):
    """The most likely key (Krumhansl-Schmuckler on the notes weighted by their length)."""
    from music21 import analysis, key, pitch

    weights = np.bincount(grid.pitches % 12, weights=(grid.offsets - grid.onsets).astype(float), minlength=12)
    if not weights.any():
        return key.Key("C")
    solver = analysis.discrete.KrumhanslSchmuckler()
    profiles = {mode: np.asarray(solver.getWeights(mode), dtype=float) for mode in ("major", "minor")}
    tonic, mode = max(
        ((tonic, mode) for tonic in range(12) for mode in profiles),
        key=lambda tm: np.corrcoef(np.roll(profiles[tm[1]], tm[0]), weights)[0, 1],
    )
    return key.Key(pitch.Pitch(tonic).name, mode)


def write_musicxml(score, path: str | Path) -> Path:
    """Write ``score`` as MusicXML (uncompressed ``.musicxml``) and return the path."""
    path = Path(path)
    score.write("musicxml", fp=str(path))
    return path


_VEROVIO_LOCK = threading.Lock()
_TOOLKIT = None  # created on first use, in whichever thread comes first, then shared


@dataclass(frozen=True)
class Engraving:
    """A score laid out in pages.

    Attributes:
        pdf: the PDF, one page per score page (vector).
        pages: PNG pictures of the pages, in order.
    """

    pdf: Path
    pages: list[Path]


def _text(x: float, y: float, size: float, words: str, weight: str = "normal") -> str:
    """An SVG text line centred on ``x``, baseline at ``y`` (page units: hundredths of a millimetre)."""
    from xml.sax.saxutils import escape

    family = f"{font_family(words)}, Helvetica, sans-serif"  # a CJK font for Chinese words, where there is one
    return (f'<text x="{x:.0f}" y="{y:.0f}" font-size="{size:.0f}" font-family="{family}" '
            f'font-weight="{weight}" text-anchor="middle" fill="black">{escape(words)}</text>')


def fit_size(words: str, size_mm: float, width_mm: float) -> float:
    """A type size at most ``size_mm`` at which ``words`` fits in ``width_mm`` (a generous width estimate: 0.62 em
    a character, a whole em for a Chinese one, so that the line stays whole in any sans-serif font)."""
    ems = 0.62 * len(words) + 0.38 * len(CJK.findall(words))
    return min(size_mm, width_mm / max(0.62, ems))


def page_lines(svg: str, paper: str, number: int, pages: int, title: str, subtitle: str, foot: str) -> str:
    """Add our own lines to a verovio page: the title and subtitle on page 1 (a running title after), and the
    credit line and page number at the foot, every one inside the margins and sized to fit whole."""
    width_mm, height_mm = PAPERS[paper]
    inner = width_mm - MARGINS_MM["left"] - MARGINS_MM["right"]
    centre = (MARGINS_MM["left"] + inner / 2) * 100
    lines = []
    if number == 1:
        size = fit_size(title, TITLE_MM, inner)
        lines.append(_text(centre, (14.0 + size) * 100, size * 100, title, "bold"))
        if subtitle:
            sub = fit_size(subtitle, SUBTITLE_MM, inner)
            lines.append(_text(centre, (14.0 + size + 2.5 + sub) * 100, sub * 100, subtitle))
    else:
        running = said(f"{title} · page {number} of {pages}")
        size = fit_size(running, SUBTITLE_MM, inner)
        lines.append(_text(centre, (14.0 + size) * 100, size * 100, running))
    if foot:
        size = fit_size(foot, FOOT_MM, inner)
        lines.append(_text(centre, (height_mm - 15.0) * 100, size * 100, foot))
    marker = 'viewBox="0 0 '
    start = svg.index(marker)
    close = svg.index(">", start)
    return svg[: close + 1] + "".join(lines) + svg[close + 1 :]


_PDFIUM_LOCK = threading.Lock()  # PDFium is not thread-safe: one page at a time in the process


def page_picture(pdf: bytes, path: Path, width_px: int) -> Path:
    """A PNG of a one-page PDF's page, ``width_px`` wide on white (PDFium).

    The page is drawn once, as vector PDF by cairosvg, and its picture is rasterised from that PDF: drawing the SVG
    a second time with cairosvg took as long as the PDF (~1.4 s a page; a 3.5-minute piece has 7 pages).
    """
    import pypdfium2 as pdfium

    with _PDFIUM_LOCK:
        document = pdfium.PdfDocument(pdf)
        try:
            page = document[0]
            picture = page.render(scale=width_px / page.get_width(), fill_color=(255, 255, 255, 255)).to_pil()
        finally:
            document.close()
    if picture.size[0] != width_px:  # PDFium rounds the scaled size; the pictures keep the width promised
        picture = picture.resize((width_px, round(picture.size[1] * width_px / picture.size[0])))
    picture.convert("RGB").save(path, optimize=False)
    return path


def engrave(musicxml: str | Path, pdf_path: str | Path, png_prefix: str | Path | None, paper: str = DEFAULT_PAPER,
            title: str = "", subtitle: str = "", foot: str = "", subject: str = "", creator: str = "") -> Engraving:
    """Lay out a MusicXML file in pages of ``paper`` (A4 or Letter) with verovio, inside margins of at least 12 mm;
    write a PDF (with its title, subject and creator) and, unless ``png_prefix`` is None, one PNG per page.

    Args:
        title, subtitle: printed at the top of the first page (the title runs on later pages).
        foot: a short line printed at the foot of every page (the credit).

    Raises:
        ValueError: an unknown paper size.
        RuntimeError: verovio could not read the MusicXML.
    """
    import cairosvg
    import verovio
    from pypdf import PdfReader, PdfWriter

    paper = check_paper(paper)
    width_mm, height_mm = PAPERS[paper]
    options = dict(VEROVIO_OPTIONS, pageWidth=round(width_mm * 10), pageHeight=round(height_mm * 10),
                   **{f"pageMargin{side.title()}": round(mm * 10) for side, mm in MARGINS_MM.items()})
    with _VEROVIO_LOCK:  # verovio's fonts are process-wide: one toolkit, one caller at a time
        global _TOOLKIT
        if _TOOLKIT is None:
            _TOOLKIT = verovio.toolkit()
        toolkit = _TOOLKIT
        toolkit.setOptions(options)
        toolkit.setInputFrom("musicxml")
        if not toolkit.loadData(Path(musicxml).read_text()):
            raise RuntimeError(f"verovio could not read {Path(musicxml).name}: {toolkit.getLog().strip()[-300:]}")
        count = toolkit.getPageCount()
        svgs = [page_lines(toolkit.renderToSVG(number), paper, number, count, title, subtitle, foot).encode()
                for number in range(1, count + 1)]
    writer = PdfWriter()
    pages: list[Path] = []
    points = (width_mm / 25.4 * 72, height_mm / 25.4 * 72)  # the PDF page in points
    for number, svg in enumerate(svgs, start=1):
        # cairosvg's PDF unit is 0.75 pt per px: ask for the paper's size in px
        pdf = cairosvg.svg2pdf(bytestring=svg, output_width=points[0] / 0.75, output_height=points[1] / 0.75)
        for page in PdfReader(io.BytesIO(pdf)).pages:
            writer.add_page(page)
        if png_prefix is not None:
            prefix = Path(png_prefix)
            pages.append(page_picture(pdf, prefix.with_name(f"{prefix.name}_page{number}.png"),
                                      round(width_mm / 25.4 * PREVIEW_DPI)))
    writer.add_metadata({"/Title": title or Path(musicxml).stem, "/Subject": subject, "/Creator": creator,
                         "/Producer": "verovio, cairosvg, pypdf"})
    pdf_path = Path(pdf_path)
    with pdf_path.open("wb") as out:
        writer.write(out)
    return Engraving(pdf_path, pages)
