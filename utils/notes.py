"""Notes on a song's beat grid (``GridNotes``), as Pop2Piano makes them and every product writes them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PIANO_PITCH_RANGE = (21, 108)  # A0..C8, the 88 keys
STEPS_PER_BEAT = 2  # Pop2Piano's time steps are half-beats of the tracked beat grid
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")  # pitch classes from C
BEATS_PER_BAR = 4  # Pop2Piano arranges in four-beat bars from the first tracked beat


def fold_into_piano_range(pitch: int) -> int:
    """Move ``pitch`` by whole octaves onto the 88 keys (A0..C8), keeping its pitch class."""
    low, high = PIANO_PITCH_RANGE
    while pitch < low:
        pitch += 12
    while pitch > high:
        pitch -= 12
    return pitch


@dataclass(frozen=True)
class GridNotes:
    """Notes placed on the song's beat grid, as Pop2Piano makes them.

    Attributes:
        onsets: [N] int, the step each note starts on (steps are half-beats; step 0 is the first tracked beat).
        offsets: [N] int, the step each note ends on (> onset).
        pitches: [N] int, MIDI pitches on the 88 keys.
        velocities: [N] int, 1..127.
        step_times: [S] float, the time in seconds of each step (linear between tracked beats, extended at the
            end by the last beat's length), covering every onset and offset.
    """

    onsets: np.ndarray
    offsets: np.ndarray
    pitches: np.ndarray
    velocities: np.ndarray
    step_times: np.ndarray

    def __len__(self) -> int:
        return int(self.onsets.shape[0])

    def time_of(self, steps: np.ndarray) -> np.ndarray:
        """Seconds of ``steps`` (ints), past the last step extended by the last step's length."""
        steps = np.asarray(steps, dtype=np.int64)
        last = self.step_times.shape[0] - 1
        inside = np.minimum(steps, last)
        step = self.step_times[-1] - self.step_times[-2] if last > 0 else 0.25
        return self.step_times[inside] + (steps - inside) * step

    @property
    def starts(self) -> np.ndarray:
        """[N] onset times in seconds."""
        return self.time_of(self.onsets)

    @property
    def ends(self) -> np.ndarray:
        """[N] offset times in seconds."""
        return self.time_of(self.offsets)

    @property
    def first_beat(self) -> float:
        """Seconds from the start of the song to the first tracked beat (step 0)."""
        return float(self.step_times[0])

    def beat_times(self, n_beats: int) -> np.ndarray:
        """[n_beats] seconds of beats 0..n_beats-1 of the grid, extended linearly past its last step."""
        return self.time_of(np.arange(n_beats) * STEPS_PER_BEAT)

    @classmethod
    def from_steps(cls, notes: np.ndarray, step_times: np.ndarray) -> GridNotes:
        """From Pop2Piano's decoded notes [N, 4] (onset step, offset step, pitch, velocity) and the step times.

        Pitches off the 88 keys move by octaves onto them; notes that do not end after they start are dropped
        (as ``PrettyMIDI.remove_invalid_notes`` drops them from the reference output).
        """
        notes = np.array(notes, dtype=np.int64).reshape(-1, 4)
        if notes.shape[0] == 0:
            empty = np.zeros(0, dtype=np.int64)
            return cls(empty, empty, empty, empty, np.asarray(step_times, float))
        notes[:, 2] = [fold_into_piano_range(int(p)) for p in notes[:, 2]]
        notes = notes[notes[:, 1] > notes[:, 0]]
        # One key cannot sound twice at once: a note ends where the next one on its key starts (chunks overlap
        # at their edges, and folding octaves can land two notes on one key).
        notes = notes[np.lexsort((notes[:, 0], notes[:, 2]))]
        same_key_next = np.r_[notes[1:, 2] == notes[:-1, 2], False]
        next_onset = np.r_[notes[1:, 0], 0]
        notes[same_key_next, 1] = np.minimum(notes[same_key_next, 1], next_onset[same_key_next])
        notes = notes[notes[:, 1] > notes[:, 0]]
        notes = notes[np.lexsort((notes[:, 2], notes[:, 0]))]
        return cls(notes[:, 0], notes[:, 1], notes[:, 2], np.clip(notes[:, 3], 1, 127), np.asarray(step_times, float))

    def cut_at(self, seconds: float) -> GridNotes:
        """The notes that sound before ``seconds`` (the song's end), each ending by then: notes starting later are
        dropped, and a note held past it ends on the last grid step at or before it."""
        if len(self) == 0:
            return self
        times = self.time_of(np.arange(int(self.offsets.max()) + 1))
        last = int(np.searchsorted(times, seconds, side="right")) - 1  # the last step at or before ``seconds``
        offsets = np.minimum(self.offsets, last)
        keep = offsets > self.onsets
        return GridNotes(self.onsets[keep], offsets[keep], self.pitches[keep], self.velocities[keep],
                         self.step_times)

    def subset(self, keep: np.ndarray) -> GridNotes:
        """The notes where the boolean mask ``keep`` [N] is True, on the same grid."""
        return GridNotes(self.onsets[keep], self.offsets[keep], self.pitches[keep], self.velocities[keep],
                         self.step_times)
