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

PhysioNet's QT Database and driver-stress database (``qtdb``, ``drivedb``, ODC-By 1.0) come from
``https://physionet.org/files/<project>/1.0.0/``: :func:`download_physionet` reads the project's
own ``SHA256SUMS.txt`` and fetches the ``.hea``/``.dat`` files it lists, each checked against
its SHA-256. EEGMAT with its ECG channel is the NEMAR/EEGDash distribution ``nm000109`` (BIDS,
21 channels; PhysioNet's current EEGMAT files carry no ECG): :func:`download_eegmat` fetches its
72 EDF files, each checked against the size and SHA-256 of its git-annex key
(:mod:`ecgaffect.datasets._nemar_eegmat`). All use the same ``.part`` resume, retries and
verification as SWELL-KW; offline, they fail with a :class:`DownloadError` that says so.

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
    "download_eegmat",
    "download_physionet",
    "download_swell",
    "fetch_file",
    "list_dataset_files",
    "list_physionet_files",
    "select_swell_files",
]

log = logging.getLogger(__name__)

DANS_BASE_URL = "https://ssh.datastations.nl"
PHYSIONET_BASE_URL = "https://physionet.org/files"
#: Downloadable PhysioNet projects: name -> ``<project>/<version>``.
PHYSIONET_PROJECTS = {"qtdb": "qtdb/1.0.0", "drivedb": "drivedb/1.0.0"}
#: Where the nm000109 git-annex web log points its EDF files (``<base>/<BIDS path>``).
NEMAR_EEGMAT_BASE_URL = "https://nemar.s3.us-east-2.amazonaws.com/nm000109/objects"
_OFFLINE_HINT = "check your internet connection (or pass --base-url for a mirror)"
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
                # the whole file's length as the server states it (unlisted sizes)
                length = resp.headers.get("Content-Length")
                expected = have + int(length) if length and length.isdigit() else -1
                with open(part, "ab" if have else "wb") as fh:
                    while chunk := resp.read(_CHUNK):
                        fh.write(chunk)
                        if bar is not None:
                            bar.update(len(chunk))  # type: ignore[attr-defined]
            got = part.stat().st_size
            want = remote.size if remote.size >= 0 else expected
            if want < 0 or got == want:
                break
            last_error = f"connection ended after {got} of {want} bytes"
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


def _fetch_all(
    wanted: list[tuple[RemoteFile, str]],
    dest: Path,
    desc: str,
    *,
    progress: bool,
    retries: int,
    backoff_s: float,
    timeout_s: float,
) -> list[Path]:
    """Fetch ``(file, url)`` pairs into ``dest`` (verified files kept, ``.part`` resumed)."""
    from tqdm.auto import tqdm

    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    if dest.exists() and not dest.is_dir():
        raise DatasetError(dest, "destination exists and is not a directory")
    todo = []
    paths = []
    for f, url in wanted:
        target = dest / f.path
        paths.append(target)
        if target.exists():
            problem = _verify(target, f)
            if problem is None:
                log.info("%s is already complete", target)
                continue
            log.warning("%s does not match the listing (%s); downloading it again", target, problem)
            target.unlink()
        todo.append((f, url))
    total = sum(max(f.size, 0) for f, _ in todo)
    initial = sum(
        min((dest / f.path).with_name(f.name + ".part").stat().st_size, max(f.size, 0))
        for f, _ in todo
        if (dest / f.path).with_name(f.name + ".part").exists()
    )
    log.info("%s: %d files, %d to fetch", desc, len(wanted), len(todo))
    with tqdm(
        total=total or None,
        initial=initial,
        unit="B",
        unit_scale=True,
        desc=desc,
        disable=not progress,
    ) as bar:
        for f, url in todo:
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


def list_physionet_files(
    project: str, base_url: str = PHYSIONET_BASE_URL, *, timeout_s: float = 60.0
) -> list[RemoteFile]:
    """The files a PhysioNet project lists in its ``SHA256SUMS.txt``, with their SHA-256."""
    url = f"{base_url.rstrip('/')}/{project}/SHA256SUMS.txt"
    try:
        with _open(url, timeout_s=timeout_s) as resp:
            text = resp.read().decode("utf-8")
    except (urllib.error.URLError, OSError, UnicodeDecodeError) as exc:
        raise DownloadError(
            f"cannot read the checksum list of {project} from {url}: {exc}; {_OFFLINE_HINT}"
        ) from exc
    files = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise DownloadError(f"{url} line {n}: expected '<sha256> <path>', got {line!r}")
        path = parts[1].strip().lstrip("*")
        directory, _, filename = path.rpartition("/")
        files.append(
            RemoteFile(
                id=0,
                path=_safe_relpath(directory, filename),
                size=-1,
                checksum_type="SHA-256",
                checksum=parts[0].lower(),
            )
        )
    return files


def download_physionet(
    name: str,
    dest: str | Path,
    *,
    records: Iterable[str] | None = None,
    base_url: str = PHYSIONET_BASE_URL,
    progress: bool = True,
    retries: int = 3,
    backoff_s: float = 2.0,
    timeout_s: float = 60.0,
) -> list[Path]:
    """Download the WFDB records (``.hea`` + ``.dat``) of ``qtdb`` or ``drivedb`` into ``dest``.

    Every file is checked against PhysioNet's ``SHA256SUMS.txt``; ``records`` (``["sel100"]``)
    limits the download to those records.
    """
    if name not in PHYSIONET_PROJECTS:
        raise ValueError(
            f"unknown PhysioNet dataset {name!r}; choose one of {sorted(PHYSIONET_PROJECTS)}"
        )
    project = PHYSIONET_PROJECTS[name]
    listed = list_physionet_files(project, base_url, timeout_s=timeout_s)
    wanted_records = set(records) if records is not None else None
    chosen = [
        f
        for f in listed
        if PurePosixPath(f.path).suffix in (".hea", ".dat")
        and (wanted_records is None or PurePosixPath(f.path).stem in wanted_records)
    ]
    if wanted_records is not None:
        missing = sorted(wanted_records - {PurePosixPath(f.path).stem for f in chosen})
        if missing:
            raise DownloadError(f"{name}: records {missing} are not in {project}/SHA256SUMS.txt")
    if not chosen:
        raise DownloadError(f"{name}: {project}/SHA256SUMS.txt lists no .hea/.dat files")
    root = f"{base_url.rstrip('/')}/{project}"
    return _fetch_all(
        [(f, f"{root}/{f.path}") for f in chosen],
        Path(dest),
        name,
        progress=progress,
        retries=retries,
        backoff_s=backoff_s,
        timeout_s=timeout_s,
    )


def download_eegmat(
    dest: str | Path,
    *,
    subjects: Iterable[int | str] | None = None,
    base_url: str = NEMAR_EEGMAT_BASE_URL,
    progress: bool = True,
    retries: int = 3,
    backoff_s: float = 2.0,
    timeout_s: float = 60.0,
) -> list[Path]:
    """Download EEGMAT with ECG (NEMAR ``nm000109``, BIDS layout) into ``dest``.

    Each EDF is checked against the size and SHA-256 of its git-annex key. ``subjects``
    (``[0, "sub-03", "Subject05"]``) limits the download. The result is a root for
    ``eegmat.load_sessions`` (BIDS layout; the ECG channel is called ``ECG`` there).
    """
    from ecgaffect.datasets._nemar_eegmat import FILES
    from ecgaffect.datasets.eegmat import _subject_id

    wanted = {_subject_id(s) for s in subjects} if subjects is not None else None
    chosen = []
    for path, size, sha in FILES:
        subject = _subject_id(path.split("/", 1)[0])
        if wanted is None or subject in wanted:
            chosen.append(
                RemoteFile(id=0, path=path, size=size, checksum_type="SHA-256", checksum=sha)
            )
    if wanted is not None:
        have = {_subject_id(f.path.split("/", 1)[0]) for f in chosen}
        if wanted - have:
            raise DownloadError(
                f"eegmat: subjects {sorted(wanted - have)} are not in nm000109 (00-35)"
            )
    root = base_url.rstrip("/")
    return _fetch_all(
        [(f, f"{root}/{f.path}") for f in chosen],
        Path(dest),
        "EEGMAT (nm000109)",
        progress=progress,
        retries=retries,
        backoff_s=backoff_s,
        timeout_s=timeout_s,
    )


# ---------------------------------------------------------------------------------------
# CLI: ``ecgaffect datasets download``
# ---------------------------------------------------------------------------------------
