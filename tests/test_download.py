"""download_swell against a local Dataverse-like HTTP server on 127.0.0.1."""

from __future__ import annotations

import argparse
import hashlib
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ecgaffect.commands.datasets import register_download
from ecgaffect.datasets import download as dl
from ecgaffect.datasets import swell
from fixtures_swell import LABEL_STEM, RAW_DIR, default_blocks, make_swell_tree

MOBI = RAW_DIR.as_posix()


class FakeDataverse:
    """Serves a file list and files by id; can cut a transfer short or serve wrong bytes."""

    def __init__(self, files: dict[int, tuple[str, bytes]]) -> None:
        self.files = files  # id -> (relative path, content)
        self.listed_md5: dict[int, str] = {}  # override the listed checksum
        self.cut_after: dict[int, int] = {}  # id -> bytes to send before dropping (once)
        self.requests: list[tuple[str, str | None]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                owner.requests.append((self.path, self.headers.get("Range")))
                url = urllib.parse.urlsplit(self.path)
                if url.path == "/api/datasets/:persistentId/":
                    q = urllib.parse.parse_qs(url.query)
                    if q.get("persistentId") != [dl.SWELL_DOI]:
                        self.send_error(404)
                        return
                    self._send(json.dumps(owner.listing()).encode(), "application/json")
                elif url.path.startswith("/api/access/datafile/"):
                    fid = int(url.path.rsplit("/", 1)[1])
                    if fid not in owner.files:
                        self.send_error(404)
                        return
                    self._send_file(fid)
                else:
                    self.send_error(404)

            def _send(self, body: bytes, ctype: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _send_file(self, fid: int) -> None:
                body = owner.files[fid][1]
                start = 0
                rng = self.headers.get("Range")
                if rng:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                cut = owner.cut_after.pop(fid, None)
                if cut is not None:
                    self.wfile.write(body[start : start + cut])
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def listing(self) -> dict:
        entries = []
        for fid, (path, body) in self.files.items():
            p = Path(path)
            entries.append(
                {
                    "label": p.name,
                    "directoryLabel": p.parent.as_posix() if str(p.parent) != "." else "",
                    "dataFile": {
                        "id": fid,
                        "filename": p.name,
                        "filesize": len(body),
                        "checksum": {
                            "type": "MD5",
                            "value": self.listed_md5.get(fid, hashlib.md5(body).hexdigest()),
                        },
                    },
                }
            )
        return {"status": "OK", "data": {"latestVersion": {"files": entries}}}

    def __enter__(self) -> FakeDataverse:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture(scope="module")
def source_tree(tmp_path_factory):
    return make_swell_tree(tmp_path_factory.mktemp("dl_src"), labels="xlsx")


def _files(root: Path) -> dict[int, tuple[str, bytes]]:
    out = {1: (f"{LABEL_STEM}.xlsx", (root / f"{LABEL_STEM}.xlsx").read_bytes())}
    for i, p in enumerate(sorted((root / RAW_DIR).iterdir()), start=10):
        out[i] = (f"{MOBI}/{p.name}", p.read_bytes())
    out[99] = ("3 - Feature dataset/other.csv", b"not needed")
    return out


def test_download_all_then_load(tmp_path, source_tree):
    with FakeDataverse(_files(source_tree)) as srv:
        paths = dl.download_swell(tmp_path / "swell", base_url=srv.url, progress=False)
    assert len(paths) == 1 + 6  # label sheet + 6 S00 files (one continuation)
    for p in paths:
        rel = p.relative_to(tmp_path / "swell")
        assert p.read_bytes() == (source_tree / rel).read_bytes()
    assert not list((tmp_path / "swell").rglob("*.part"))
    assert not (tmp_path / "swell" / "3 - Feature dataset").exists()
    sessions = swell.load_sessions(tmp_path / "swell", progress=False)
    assert len(sessions) == 5


def test_subjects_filter_and_skip_complete(tmp_path, source_tree):
    with FakeDataverse(_files(source_tree)) as srv:
        paths = dl.download_swell(tmp_path, subjects=["PP2"], base_url=srv.url, progress=False)
        names = sorted(p.name for p in paths[1:])
        assert names == sorted(
            [b.filename for b in default_blocks() if b.pp == 2]
            + [b.cont_filename for b in default_blocks() if b.cont_filename]
        )
        n_before = len(srv.requests)
        dl.download_swell(tmp_path, subjects=[2], base_url=srv.url, progress=False)
        # second run: only the file list is fetched, every file is already complete
        assert [r for r, _ in srv.requests[n_before:] if "datafile" in r] == []


def test_interrupted_transfer_resumes(tmp_path, source_tree):
    files = _files(source_tree)
    big = max(files, key=lambda i: len(files[i][1]))
    with FakeDataverse(files) as srv:
        srv.cut_after[big] = 5000
        dl.download_swell(tmp_path, base_url=srv.url, progress=False, backoff_s=0.01)
        ranges = [rng for path, rng in srv.requests if path.endswith(f"/datafile/{big}")]
    assert ranges == [None, "bytes=5000-"]
    assert (tmp_path / files[big][0]).read_bytes() == files[big][1]


def test_existing_part_file_resumes(tmp_path, source_tree):
    files = _files(source_tree)
    rel, body = files[10]
    part = tmp_path / (rel + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(body[:1234])
    with FakeDataverse(files) as srv:
        dl.download_swell(tmp_path, subjects=[1], base_url=srv.url, progress=False)
        ranges = [rng for path, rng in srv.requests if path.endswith("/datafile/10")]
    assert ranges == ["bytes=1234-"]
    assert (tmp_path / rel).read_bytes() == body
    assert not part.exists()


def test_checksum_mismatch_is_reported(tmp_path, source_tree):
    files = _files(source_tree)
    with FakeDataverse(files) as srv:
        srv.listed_md5[10] = "0" * 32
        with pytest.raises(
            dl.DownloadError, match=r"pp1_.*verification failed \(MD5 [0-9a-f]{32}, listed 0{32}\)"
        ):
            dl.download_swell(tmp_path, subjects=[1], base_url=srv.url, progress=False)
    target = tmp_path / files[10][0]
    assert not target.exists()
    assert not target.with_name(target.name + ".part").exists()


def test_gives_up_after_retries(tmp_path, source_tree):
    files = _files(source_tree)
    with FakeDataverse(files) as srv:
        srv.cut_after[10] = 100
        with pytest.raises(dl.DownloadError, match=r"gave up after 1 attempts.*resume"):
            dl.download_swell(tmp_path, subjects=[1], base_url=srv.url, progress=False, retries=0)
    part = tmp_path / (files[10][0] + ".part")
    assert part.stat().st_size == 100


def test_not_found_is_not_retried(tmp_path):
    with FakeDataverse({}) as srv:
        remote = dl.RemoteFile(id=5, path="x.S00", size=10, checksum_type="", checksum="")
        with pytest.raises(dl.DownloadError, match="x.S00: HTTP 404"):
            dl.fetch_file(
                f"{srv.url}/api/access/datafile/5", tmp_path / "x.S00", remote, backoff_s=0.01
            )
        assert len(srv.requests) == 1


def test_listing_without_s00_files(tmp_path, source_tree):
    files = {k: v for k, v in _files(source_tree).items() if not v[0].endswith(".S00")}
    with (
        FakeDataverse(files) as srv,
        pytest.raises(dl.DownloadError, match="no Mobi .S00 files.*0_SWELL.zip"),
    ):
        dl.download_swell(tmp_path, base_url=srv.url, progress=False)


def test_unsafe_paths_are_refused():
    with pytest.raises(dl.DownloadError, match="refusing unsafe path"):
        dl._safe_relpath("../../etc", "passwd")


def test_unreachable_server(tmp_path):
    with FakeDataverse({}) as srv:
        url = srv.url
    with pytest.raises(dl.DownloadError, match="cannot read the file list"):
        dl.download_swell(tmp_path, base_url=url, progress=False, timeout_s=2)


def test_bad_retries(tmp_path):
    with pytest.raises(ValueError, match="retries must be >= 0, got -1"):
        dl.download_swell(tmp_path, retries=-1, progress=False)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecgaffect datasets")
    sub = parser.add_subparsers(dest="command")
    register_download(sub)
    return parser


def test_cli_download_swell(tmp_path, source_tree, capsys):
    with FakeDataverse(_files(source_tree)) as srv:
        args = _parser().parse_args(
            [
                "download",
                "swell",
                "--dest",
                str(tmp_path),
                "--subjects",
                "1",
                "--base-url",
                srv.url,
                "--no-progress",
            ]
        )
        assert args.func(args) == 0
    assert "SWELL-KW: 4 files" in capsys.readouterr().out
    assert (tmp_path / RAW_DIR / "pp1_18-9-2012_c3.S00").is_file()


@pytest.mark.parametrize("name", ["amigos", "dreamer", "wesad"])
def test_cli_restricted_datasets_explain_access(name, capsys):
    args = _parser().parse_args(["download", name])
    assert args.func(args) == 1
    out = capsys.readouterr().out
    assert out.startswith(dl.ACCESS_INSTRUCTIONS[name])
    assert "Nothing was downloaded" in out


def test_cli_swell_needs_dest():
    args = _parser().parse_args(["download", "swell"])
    with pytest.raises(ValueError, match="--dest is required"):
        args.func(args)
