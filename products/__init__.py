"""The files a user downloads, written by one layer that the page and the command line share: ``piano`` (every
product of a piano cover) and ``music`` (MusicGen results: WAV, MP3, parameters JSON and pictures)."""
