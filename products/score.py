"""Sheet music of notes on a beat grid, for every product that has notes (a piano cover, the MIDI of a MusicGen
result): two hands, MusicXML, and PDF and page pictures engraved on A4 or Letter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from utils.midi import GridNotes
from utils.provenance import Provenance


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
                  provenance: Provenance, description: str, easier: bool = False, paper: str = "a4") -> ScoreFiles:
    """Engrave ``grid`` for two hands on ``paper`` (A4 or Letter): MusicXML, PDF and page pictures.

    Args:
        bpm: the tempo mark.
        path_of: the path of a file from its suffix ("score.pdf" -> ``.../song_score.pdf``).
        title, subtitle: the first page's heading.
        provenance: who made the notes (MusicXML rights line, the pages' foot, the PDF's creator).
        description: the PDF's subject.
        easier: thin to 4 notes a hand (see ``utils.score.easier``).
    """
    from utils import score

    hands = score.split_hands(grid)
    hard = score.hard_places(grid, hands)
    removed = 0
    if easier:
        thinned, hands = score.easier(grid, hands)
        removed = len(grid) - len(thinned)
        grid = thinned
    paper = score.check_paper(paper)
    built = score.build_score(grid, hands, bpm, title, provenance.text(), subtitle)
    name = ("score_easier" if easier else "score") + ("" if paper == score.DEFAULT_PAPER else f"_{paper}")
    musicxml = score.write_musicxml(built, path_of(f"{name}.musicxml"))
    engraving = score.engrave(musicxml, path_of(f"{name}.pdf"), path_of(name), paper, title, subtitle,
                              provenance.short(), description, provenance.tags()["software"])
    return ScoreFiles(musicxml, engraving.pdf, engraving.pages, hard, easier, removed)
