"""Sheet music of notes on a beat grid, for every product that has notes (a piano cover, the MIDI of a MusicGen
result): two hands, MusicXML, and PDF and page pictures engraved on A4 or Letter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from utils.notes import GridNotes
from utils.provenance import Provenance
from utils.words import words


@dataclass(frozen=True)
class ScoreFiles:
    """The engraved score.

    Attributes:
        musicxml: the score as MusicXML (opens in MuseScore, Finale, Sibelius, Dorico).
        pdf: the engraved pages.
        pages: one PNG per page.
        hard_places: chords of the full arrangement where one hand has over 4 notes or spans over a tenth.
        easier: whether this is the Easier version.
        removed: notes the Easier version left out.
    """

    musicxml: Path
    pdf: Path
    pages: list[Path]
    hard_places: int
    easier: bool
    removed: int


def engrave_notes(grid: GridNotes, bpm: float, path_of: Callable[[str], Path], title: str, subtitle: str,
                  provenance: Provenance, description: str, easier: bool = False, paper: str = "a4",
                  pages: bool = True) -> ScoreFiles:
    """Engrave ``grid`` for two hands on ``paper`` (A4 or Letter): MusicXML, PDF and (with ``pages``) page pictures.

    Args:
        bpm: the tempo mark.
        path_of: the path of a file from its suffix ("score.pdf" -> ``.../song_score.pdf``).
        title, subtitle: the first page's heading.
        provenance: who made the notes (MusicXML rights line, the pages' foot, the PDF's creator).
        description: the PDF's subject.
        easier: thin to 4 notes a hand (see ``utils.engraving.easier``).
    """
    from utils import engraving

    hands = engraving.split_hands(grid)
    hard = engraving.hard_places(grid, hands)
    removed = 0
    if easier:
        thinned, hands = engraving.easier(grid, hands)
        removed = len(grid) - len(thinned)
        grid = thinned
    paper = engraving.check_paper(paper)
    built = engraving.build_score(grid, hands, bpm, title, provenance.text(), subtitle)
    name = ("score_easier" if easier else "score") + ("" if paper == engraving.DEFAULT_PAPER else f"_{paper}")
    musicxml = engraving.write_musicxml(built, path_of(f"{name}.musicxml"))
    laid_out = engraving.engrave(musicxml, path_of(f"{name}.pdf"), path_of(name) if pages else None, paper, title,
                                 subtitle, words(provenance.short()), description, provenance.tags()["software"])
    return ScoreFiles(musicxml, laid_out.pdf, laid_out.pages, hard, easier, removed)
