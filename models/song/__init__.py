"""Songs with lyrics (ACE-Step 1.5 through diffusers): the request, the result and the model wrapper."""

from models.progress import GenerationCancelled
from models.song.checkpoints import (
    CHECKPOINT_LABELS,
    DEFAULT_SONG_MODEL,
    SONG_BILLIONS,
    SONG_CHECKPOINTS,
    SONG_CLI_FLAG,
    SONG_ENV_VAR,
    default_song_name,
)
from models.song.request import *  # noqa: F401,F403 - the constants and checks the page and the CLI share
from models.song.request import SongEdit, SongRequest, SongResult

__all__ = ["CHECKPOINT_LABELS", "DEFAULT_SONG_MODEL", "GenerationCancelled", "SONG_BILLIONS", "SONG_CHECKPOINTS",
           "SONG_CLI_FLAG", "SONG_ENV_VAR", "SongEdit", "SongRequest", "SongResult", "default_song_name"]
