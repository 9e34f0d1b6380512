"""Fetch a RobustBench checkpoint from Google Drive, only when the user asked (``download=True``).

The file goes to a temporary name beside its destination and is renamed into place only after
it proved not to be an HTML page (Google Drive answers an exceeded quota or a virus-scan warning
with a page, which RobustBench's own downloader used to save as the checkpoint).
"""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from pathlib import Path

from robust_attn.atomic import atomic_write
from robust_attn.errors import CheckpointError
from robust_attn.hub.weights import looks_like_html

# ``confirm=t`` skips the "cannot scan this file for viruses" page for large files (as gdown does).
GDRIVE_URL = "https://drive.usercontent.google.com/download?id={id}&export=download&confirm=t"


def gdrive_page(gdrive_id: str) -> str:
    """The page a user can open to download the file by hand."""
    return f"https://drive.google.com/uc?id={gdrive_id}"


def _copy(url: str, tmp: str, dest: Path, by_hand: str) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "robust-attn"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response, open(tmp, "wb") as out:
            shutil.copyfileobj(response, out, length=1 << 20)
    except (urllib.error.URLError, OSError) as err:
        raise CheckpointError(
            f"cannot download {dest} ({err}); check the network, or download {by_hand} by hand and save it as {dest}"
        ) from None
    with open(tmp, "rb") as f:
        head = f.read(2048)
    if not head or looks_like_html(head):
        raise CheckpointError(
            f"Google Drive sent {'nothing' if not head else 'an HTML page (quota exceeded?)'} instead of {dest}; "
            f"try later, or download {by_hand} by hand and save it as {dest}"
        )


def download_gdrive(gdrive_id: str, dest: Path, progress: bool = True) -> None:
    """Download Google Drive file ``gdrive_id`` to ``dest``; nothing is left at ``dest`` on failure."""
    if progress:
        print(f"downloading {dest.name} from Google Drive (id {gdrive_id}) -> {dest}", flush=True)
    atomic_write(dest, lambda tmp: _copy(GDRIVE_URL.format(id=gdrive_id), tmp, dest, gdrive_page(gdrive_id)))
