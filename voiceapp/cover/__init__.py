"""Song cover in one step: separate -> (lead/backing split) -> convert the lead vocals -> remix, loudness-matched."""

from voiceapp.cover.pipeline import (CoverConfig, CoverResult, cover_output_path, default_stems_dir,
                                     karaoke_separators, make_cover, shifts_music)

__all__ = ["CoverConfig", "CoverResult", "cover_output_path", "default_stems_dir", "karaoke_separators",
           "make_cover", "shifts_music"]
