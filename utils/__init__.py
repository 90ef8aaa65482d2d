"""Helpers shared by the app and the model wrappers: audio I/O, MIDI rendering, beats, pictures."""
