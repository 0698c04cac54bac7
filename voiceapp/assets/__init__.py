"""Base assets (ContentVec, RMVPE, RVC's pretrained G/D, Whisper tiny.en): the registry and status (`registry`),
the one downloader (`download`, also used by the voice-model importer), downloading and importing them into the
workspace (`install`), and `voiceapp assets ...` (`cli`)."""

from voiceapp.assets.download import (DownloadError, byte_progress_bar, fetch, hub_offline,  # noqa: F401
                                      resolve_endpoint)
from voiceapp.assets.install import DownloadConfig, download_asset, download_assets, import_asset  # noqa: F401
from voiceapp.assets.registry import (ASSETS, GROUPS, Asset, AssetFile, AssetStatus, asset_status,  # noqa: F401
                                      expand_names, file_problem, get_asset, locate, require, sha256_matches,
                                      status_table)
from voiceapp.progress import NEVER  # noqa: F401

_progress_bar_class = byte_progress_bar  # its former name (tests/test_assets_download.py)
