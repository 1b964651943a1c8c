"""Resumable downloads with a progress bar, and a clear message when offline."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from typing import Optional

__all__ = ["download", "DownloadError"]


class DownloadError(RuntimeError):
    pass


def download(url: str, dest: str, sha256: Optional[str] = None, timeout: float = 30.0) -> str:
    """Download ``url`` to ``dest``, continuing a partial ``dest.part`` where the server allows
    it; verify ``sha256`` when given. Returns ``dest``."""
    from tqdm import tqdm

    if os.path.isfile(dest):
        return dest
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    part = dest + ".part"
    have = os.path.getsize(part) if os.path.exists(part) else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # already complete
            os.replace(part, dest)
            return dest
        raise DownloadError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError(
            f"cannot download {url} ({getattr(exc, 'reason', exc)}). Without network access, put a local "
            f"copy of the corpus in place and pass --corpus-dir DIR or set ASR_CORPORA"
        ) from None
    with resp:
        if have and resp.status != 206:
            have = 0  # server ignored the range: start over
        total = resp.headers.get("Content-Length")
        total = int(total) + have if total else None
        with open(part, "ab" if have else "wb") as f, tqdm(
            total=total, initial=have, unit="B", unit_scale=True, desc=os.path.basename(dest)
        ) as bar:
            while True:
                block = resp.read(1 << 20)
                if not block:
                    break
                f.write(block)
                bar.update(len(block))
    if sha256:
        h = hashlib.sha256()
        with open(part, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        if h.hexdigest() != sha256:
            os.remove(part)
            raise DownloadError(f"{url}: checksum mismatch (got {h.hexdigest()}, expected {sha256}); removed the download")
    os.replace(part, dest)
    return dest
