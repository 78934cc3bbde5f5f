"""Fetch SWELL-KW from the DANS Data Station; explain how to get the restricted datasets.

SWELL-KW (DOI 10.17026/dans-x55-69zp, CC BY-NC-SA 4.0) is open: its file list comes from the
Dataverse API ``/api/datasets/:persistentId/?persistentId=doi:...`` and each file from
``/api/access/datafile/{id}``. :func:`download_swell` fetches only what the loader needs (the
per-minute label sheet and the Mobi ``.S00`` files, optionally for some participants), into
the official layout, with

* **resume**: bytes go to ``NAME.part``; a later run asks for the rest with an HTTP ``Range``
  header (and starts over if the server ignores it);
* **verification**: the size and the checksum listed by Dataverse (MD5, SHA-1, SHA-256 or
  SHA-512) are checked before ``NAME.part`` becomes ``NAME``; a mismatch removes the
  ``.part`` file and raises :class:`DownloadError` naming the file and both checksums;
* **retries** with exponential back-off on network errors and 5xx answers;
* a tqdm progress bar over all bytes. Only the standard library's ``urllib`` is used.

Ingested tabular files (Dataverse turns the ``.xlsx`` label sheet into a ``.tab``) are fetched
in their original format (``?format=original``), whose size and checksum are the listed ones.

AMIGOS, DREAMER and WESAD cannot be downloaded for you: :data:`ACCESS_INSTRUCTIONS` says how
to request them.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ecgaffect.datasets.base import DatasetError

__all__ = [
    "ACCESS_INSTRUCTIONS",
    "DANS_BASE_URL",
    "SWELL_DOI",
    "DownloadError",
    "RemoteFile",
    "download_swell",
    "fetch_file",
    "list_dataset_files",
    "select_swell_files",
]

log = logging.getLogger(__name__)

DANS_BASE_URL = "https://ssh.datastations.nl"
SWELL_DOI = "doi:10.17026/dans-x55-69zp"
USER_AGENT = "ecgaffect-download/0.1 (+urllib)"
_CHUNK = 1 << 20
_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-512": "sha512"}

ACCESS_INSTRUCTIONS: dict[str, str] = {
    "amigos": (
        "AMIGOS (Miranda-Correa et al., IEEE TAFFC) is distributed under an End User Licence "
        "Agreement and may not be redistributed, so ecgaffect cannot download it. Request "
        "access from the AMIGOS project page of Queen Mary University of London "
        "(http://www.eecs.qmul.ac.uk/mmv/datasets/amigos/): sign and return the EULA, then "
        "download the preprocessed physiological data (Data_Preprocessed_P01.mat .. P40.mat) "
        "and point 'ecgaffect' at that folder."
    ),
    "dreamer": (
        "DREAMER (Katsigiannis & Ramzan, IEEE JBHI 2018) is restricted-access, so ecgaffect "
        "cannot download it. Request access on its Zenodo record (search Zenodo for "
        "'DREAMER' by S. Katsigiannis; access is granted by the authors for research use), "
        "then download DREAMER.mat (about 0.5 GB) and point 'ecgaffect' at its folder."
    ),
    "wesad": (
        "WESAD (Schmidt et al., ICMI 2018) is offered by its authors (see the WESAD entry of "
        "the UCI Machine Learning Repository for the current download link and terms); its "
        "licence is not confirmed, so ecgaffect neither downloads nor redistributes it. "
        "Download and unpack it yourself (WESAD/S2..S17 with SX.pkl) and point 'ecgaffect' "
        "at the WESAD folder. The .pkl files are pickles: loading one runs code, so only load "
        "files from the official source."
    ),
}


class DownloadError(RuntimeError):
    """A download failed (network, size or checksum); the message names the file."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a Dataverse dataset."""

    id: int
    path: str  # relative POSIX path: directoryLabel/filename
    size: int
    checksum_type: str  # "MD5", "SHA-1", ... or "" when none is listed
    checksum: str
    original: bool = False  # fetch with ?format=original (ingested tabular file)

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name


def _open(url: str, *, timeout_s: float, headers: dict[str, str] | None = None):  # noqa: ANN202
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})
    return urllib.request.urlopen(req, timeout=timeout_s)  # noqa: S310 - http(s) only


def _safe_relpath(directory: str, filename: str) -> str:
    parts = [p for p in PurePosixPath(directory.replace("\\", "/")).parts if p not in ("", ".")]
    parts.append(filename)
    if any(p == ".." or p.startswith("/") for p in parts) or "/" in filename:
        raise DownloadError(f"refusing unsafe path from the file list: {directory!r}/{filename!r}")
    return str(PurePosixPath(*parts))


def list_dataset_files(
    base_url: str = DANS_BASE_URL, doi: str = SWELL_DOI, *, timeout_s: float = 60.0
) -> list[RemoteFile]:
    """The files of a Dataverse dataset's latest version, with ids, sizes and checksums."""
    url = (
        f"{base_url.rstrip('/')}/api/datasets/:persistentId/?"
        f"{urllib.parse.urlencode({'persistentId': doi})}"
    )
    try:
        with _open(url, timeout_s=timeout_s) as resp:
            payload = json.load(resp)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DownloadError(f"cannot read the file list of {doi} from {url}: {exc}") from exc
    try:
        entries = payload["data"]["latestVersion"]["files"]
    except (KeyError, TypeError):
        raise DownloadError(
            f"unexpected answer from {url}: no data.latestVersion.files "
            f"(status {payload.get('status') if isinstance(payload, dict) else None!r})"
        ) from None
    files = []
    for e in entries:
        df = e.get("dataFile", {})
        original = bool(df.get("originalFileFormat")) and "originalFileSize" in df
        filename = df.get("originalFileName") if original else None
        filename = filename or e.get("label") or df.get("filename")
        checksum = df.get("checksum") or (
            {"type": "MD5", "value": df["md5"]} if "md5" in df else {}
        )
        files.append(
            RemoteFile(
                id=int(df["id"]),
                path=_safe_relpath(e.get("directoryLabel", ""), filename),
                size=int(df["originalFileSize"] if original else df.get("filesize", -1)),
                checksum_type=str(checksum.get("type", "")).upper(),
                checksum=str(checksum.get("value", "")).lower(),
                original=original,
            )
        )
    return files


def select_swell_files(
    files: Iterable[RemoteFile], subjects: Iterable[int | str] | None = None
) -> list[RemoteFile]:
    """The label sheet and the Mobi ``.S00`` files (of ``subjects`` only, if given)."""
    from ecgaffect.datasets import swell

    wanted = swell._participant_filter(subjects)
    labels, signals = [], []
    for f in files:
        p = PurePosixPath(f.path)
        if p.stem == swell.LABEL_STEM and p.suffix.lower() in (".xlsx", ".tab"):
            labels.append(f)
        elif p.suffix.lower() == ".s00" and "mobi" in str(p.parent).lower():
            parsed = swell.parse_filename(p.name)
            if parsed is None:
                log.warning("not fetching %s: file name not understood", f.path)
            elif wanted is None or parsed.pp in wanted:
                signals.append(f)
    if not labels:
        raise DownloadError(
            f"the dataset's file list has no '{swell.LABEL_STEM}.xlsx/.tab'; it may only "
            "offer the whole set as 0_SWELL.zip, download that from the DANS Data Station "
            "and unzip it"
        )
    if not signals:
        which = "" if wanted is None else f" for participants {sorted(wanted)}"
        raise DownloadError(
            f"the dataset's file list has no Mobi .S00 files{which}; it may only offer the "
            "whole set as 0_SWELL.zip, download that from the DANS Data Station and unzip it"
        )
    # prefer the .xlsx label sheet when both are listed
    labels.sort(key=lambda f: PurePosixPath(f.path).suffix.lower() != ".xlsx")
    return [labels[0], *sorted(signals, key=lambda f: f.path)]


def _digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _verify(path: Path, remote: RemoteFile) -> str | None:
    """``None`` if ``path`` matches the listed size and checksum, else what is wrong."""
    size = path.stat().st_size
    if remote.size >= 0 and size != remote.size:
        return f"size {size} bytes, listed {remote.size}"
    if remote.checksum_type:
        algo = _HASHES.get(remote.checksum_type)
        if algo is None:
            log.warning("%s: cannot check a %s checksum", path, remote.checksum_type)
            return None
        got = _digest(path, algo)
        if got != remote.checksum:
            return f"{remote.checksum_type} {got}, listed {remote.checksum}"
    return None


def fetch_file(
    url: str,
    target: str | Path,
    remote: RemoteFile,
    *,
    retries: int = 3,
    backoff_s: float = 2.0,
    timeout_s: float = 60.0,
    bar: object | None = None,
) -> Path:
    """Download ``url`` to ``target`` via ``target.part`` with resume, retries and checks.

    ``bar`` is a tqdm bar to advance by the bytes received. Raises :class:`DownloadError`.
    """
    target = Path(target)
    part = target.with_name(target.name + ".part")
    target.parent.mkdir(parents=True, exist_ok=True)
    last_error = ""
    for attempt in range(retries + 1):
        have = part.stat().st_size if part.exists() else 0
        if remote.size >= 0 and have > remote.size:
            log.warning("%s is longer than the listed size; starting over", part)
            part.unlink()
            have = 0
        if remote.size >= 0 and have == remote.size:
            break
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with _open(url, timeout_s=timeout_s, headers=headers) as resp:
                if have and resp.status != 206:
                    log.info("%s: server ignored the range request; starting over", target.name)
                    if bar is not None:
                        bar.update(-have)  # type: ignore[attr-defined]
                    have = 0
                elif have:
                    log.info("%s: resuming at byte %d", target.name, have)
                with open(part, "ab" if have else "wb") as fh:
                    while chunk := resp.read(_CHUNK):
                        fh.write(chunk)
                        if bar is not None:
                            bar.update(len(chunk))  # type: ignore[attr-defined]
            got = part.stat().st_size
            if remote.size < 0 or got == remote.size:
                break
            last_error = f"connection ended after {got} of {remote.size} bytes"
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code < 500 and exc.code not in (408, 429):
                raise DownloadError(
                    f"{target.name}: HTTP {exc.code} {exc.reason} from {url}"
                ) from exc
            last_error = f"HTTP {exc.code} {exc.reason}"
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        if attempt < retries:
            wait = backoff_s * 2**attempt
            log.warning(
                "%s: %s; retry %d/%d in %.1f s", target.name, last_error, attempt + 1, retries, wait
            )
            time.sleep(wait)
    else:
        raise DownloadError(
            f"{target.name}: gave up after {retries + 1} attempts ({last_error}); run the "
            f"command again to resume from the {part.stat().st_size if part.exists() else 0} "
            f"bytes in {part}"
        )
    problem = _verify(part, remote)
    if problem:
        part.unlink()
        raise DownloadError(
            f"{target}: verification failed ({problem}); the partial file was removed, "
            "run the command again to download it afresh"
        )
    part.replace(target)
    return target


def download_swell(
    dest: str | Path,
    *,
    subjects: Iterable[int | str] | None = None,
    base_url: str = DANS_BASE_URL,
    progress: bool = True,
    retries: int = 3,
    backoff_s: float = 2.0,
    timeout_s: float = 60.0,
) -> list[Path]:
    """Download the SWELL-KW files the loader needs into ``dest`` (official layout).

    Files already present with the listed size and checksum are kept; interrupted files resume.

    Args:
        dest: destination folder (becomes the ``root`` for ``swell.load_sessions``).
        subjects: participant numbers or names (``1``, ``"PP1"``); all when ``None``.
        base_url: the Dataverse installation (the DANS SSH Data Station).
        progress: show a tqdm progress bar of the bytes.
        retries: extra attempts per file after a network error.
        backoff_s: first wait before a retry (doubles each time).
        timeout_s: socket timeout.

    Returns:
        The local paths of the selected files.
    """
    from tqdm.auto import tqdm

    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise DatasetError(dest, "destination exists and is not a directory")
    wanted = select_swell_files(
        list_dataset_files(base_url, SWELL_DOI, timeout_s=timeout_s), subjects
    )
    todo: list[RemoteFile] = []
    paths = []
    for f in wanted:
        target = dest / f.path
        paths.append(target)
        if target.exists():
            problem = _verify(target, f)
            if problem is None:
                log.info("%s is already complete", target)
                continue
            log.warning("%s does not match the listing (%s); downloading it again", target, problem)
            target.unlink()
        todo.append(f)
    total = sum(max(f.size, 0) for f in todo)
    initial = 0
    for f in todo:
        part = (dest / f.path).with_name(f.name + ".part")
        if part.exists():
            initial += min(part.stat().st_size, max(f.size, 0))
    log.info(
        "SWELL-KW: %d files selected, %d to fetch (%.1f MB)", len(wanted), len(todo), total / 1e6
    )
    with tqdm(
        total=total,
        initial=initial,
        unit="B",
        unit_scale=True,
        desc="SWELL-KW",
        disable=not progress,
    ) as bar:
        for f in todo:
            query = "?format=original" if f.original else ""
            url = f"{base_url.rstrip('/')}/api/access/datafile/{f.id}{query}"
            fetch_file(
                url,
                dest / f.path,
                f,
                retries=retries,
                backoff_s=backoff_s,
                timeout_s=timeout_s,
                bar=bar,
            )
    return paths
