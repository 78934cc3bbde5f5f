"""download_physionet (qtdb, drivedb) and download_eegmat against a local HTTP server."""

from __future__ import annotations

import argparse
import hashlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ecgaffect.commands.datasets import register_download
from ecgaffect.datasets import _nemar_eegmat, eegmat, qtdb
from ecgaffect.datasets import download as dl
from fixtures_physionet import ecg_mv, make_eegmat_tree, write_edf, write_wfdb


class StaticServer:
    """Serves ``{url path: bytes}`` with Range support; can cut a transfer short once."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.cut_after: dict[str, int] = {}
        self.requests: list[tuple[str, str | None]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                owner.requests.append((self.path, self.headers.get("Range")))
                body = owner.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
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
                cut = owner.cut_after.pop(self.path, None)
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

    def __enter__(self) -> StaticServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


@pytest.fixture(scope="module")
def qt_files(tmp_path_factory):
    """A fake ``/qtdb/1.0.0/`` tree: two records, an annotation file and SHA256SUMS.txt."""
    src = tmp_path_factory.mktemp("qt_src")
    for i, name in enumerate(("sel100", "sel102")):
        sig = {
            "MLII": ecg_mv(12, 250, seed=i, hr_bpm=70),
            "V5": ecg_mv(12, 250, seed=i + 5, hr_bpm=70),
        }
        write_wfdb(src, name, sig, 250.0)
    (src / "sel100.q1c").write_bytes(b"annotations we do not need")
    files = {p.name: p.read_bytes() for p in sorted(src.iterdir())}
    sums = "".join(f"{_sha(b)} {name}\n" for name, b in files.items())
    served = {f"/qtdb/1.0.0/{name}": b for name, b in files.items()}
    served["/qtdb/1.0.0/SHA256SUMS.txt"] = sums.encode()
    return files, served


def test_physionet_download_verifies_and_loads(tmp_path, qt_files):
    files, served = qt_files
    with StaticServer(served) as srv:
        paths = dl.download_physionet("qtdb", tmp_path / "qt", base_url=srv.url, progress=False)
    assert sorted(p.name for p in paths) == ["sel100.dat", "sel100.hea", "sel102.dat", "sel102.hea"]
    for p in paths:
        assert p.read_bytes() == files[p.name]
    assert not (tmp_path / "qt" / "sel100.q1c").exists()
    assert not list((tmp_path / "qt").rglob("*.part"))
    assert len(qtdb.load_sessions(tmp_path / "qt")) == 4
    # a second run keeps the verified files and fetches nothing
    with StaticServer(served) as srv:
        dl.download_physionet("qtdb", tmp_path / "qt", base_url=srv.url, progress=False)
        assert [r for r, _ in srv.requests] == ["/qtdb/1.0.0/SHA256SUMS.txt"]


def test_physionet_records_filter(tmp_path, qt_files):
    _, served = qt_files
    with StaticServer(served) as srv:
        paths = dl.download_physionet(
            "qtdb", tmp_path, records=["sel102"], base_url=srv.url, progress=False
        )
        assert sorted(p.name for p in paths) == ["sel102.dat", "sel102.hea"]
        with pytest.raises(dl.DownloadError, match=r"records \['sel999'\] are not in qtdb"):
            dl.download_physionet("qtdb", tmp_path, records=["sel999"], base_url=srv.url)
    with pytest.raises(ValueError, match="unknown PhysioNet dataset 'mitdb'"):
        dl.download_physionet("mitdb", tmp_path)


def test_physionet_resume_after_a_cut(tmp_path, qt_files):
    files, served = qt_files
    with StaticServer(served) as srv:
        srv.cut_after["/qtdb/1.0.0/sel100.dat"] = 1000
        dl.download_physionet(
            "qtdb", tmp_path, records=["sel100"], base_url=srv.url, progress=False, backoff_s=0.0
        )
        ranges = [r for p, r in srv.requests if p.endswith("sel100.dat")]
    assert ranges == [None, "bytes=1000-"]
    assert (tmp_path / "sel100.dat").read_bytes() == files["sel100.dat"]


def test_physionet_checksum_mismatch_removes_the_part(tmp_path, qt_files):
    _, served = qt_files
    bad = dict(served)
    bad["/qtdb/1.0.0/sel100.hea"] = b"tampered header\n"
    with StaticServer(bad) as srv, pytest.raises(dl.DownloadError, match="verification failed"):
        dl.download_physionet(
            "qtdb", tmp_path, records=["sel100"], base_url=srv.url, progress=False
        )
    assert not list(tmp_path.rglob("*.part"))
    assert not (tmp_path / "sel100.hea").exists()


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_offline_is_a_clear_error(tmp_path):
    url = _closed_port_url()
    with pytest.raises(dl.DownloadError, match="cannot read the checksum list of qtdb.*internet"):
        dl.download_physionet("qtdb", tmp_path, base_url=url, progress=False)
    with pytest.raises(dl.DownloadError, match="gave up after 1 attempts.*run the command again"):
        dl.download_eegmat(
            tmp_path, subjects=[0], base_url=url, progress=False, retries=0, backoff_s=0.0
        )


@pytest.fixture
def nemar(tmp_path, monkeypatch):
    """Two subjects in the nm000109 BIDS layout, served with their listed sizes/checksums."""
    flat = make_eegmat_tree(tmp_path / "flat", 2)
    from ecgaffect.io.edf import read_edf

    served, listing = {}, []
    for s in range(2):
        for k, task in ((1, "rest"), (2, "mentalArithmetic")):
            x = read_edf(flat / f"Subject{s:02d}_{k}.edf").samples
            out = tmp_path / "bids_src" / f"sub-{s:02d}_{task}.edf"
            out.parent.mkdir(exist_ok=True)
            write_edf(out, {"Fz": x * 0, "ECG": x}, 500)
            body = out.read_bytes()
            path = f"sub-{s:02d}/eeg/sub-{s:02d}_task-{task}_eeg.edf"
            served[f"/nm000109/objects/{path}"] = body
            listing.append((path, len(body), _sha(body)))
    monkeypatch.setattr(_nemar_eegmat, "FILES", tuple(listing))
    return served


def test_eegmat_download_then_load(tmp_path, nemar):
    with StaticServer(nemar) as srv:
        paths = dl.download_eegmat(
            tmp_path / "eegmat", base_url=f"{srv.url}/nm000109/objects", progress=False
        )
    assert len(paths) == 4
    sessions = eegmat.load_sessions(tmp_path / "eegmat")
    assert [s.subject for s in sessions] == ["Subject00", "Subject01"]
    assert sessions[0].provenance["channel"] == "ECG"
    with pytest.raises(dl.DownloadError, match=r"subjects \['Subject07'\] are not in nm000109"):
        dl.download_eegmat(tmp_path, subjects=[7], progress=False)


def test_eegmat_size_mismatch(tmp_path, nemar):
    short = {k: v[:-10] if "sub-01" in k else v for k, v in nemar.items()}
    with StaticServer(short) as srv, pytest.raises(dl.DownloadError):
        dl.download_eegmat(
            tmp_path,
            subjects=["sub-01"],
            base_url=f"{srv.url}/nm000109/objects",
            progress=False,
            retries=0,
        )
    assert not (tmp_path / "sub-01/eeg/sub-01_task-rest_eeg.edf").exists()


def test_nemar_listing_is_complete():
    paths = [p for p, _, _ in _nemar_eegmat.FILES]
    assert len(paths) == len(set(paths)) == 72
    subjects = {p.split("/")[0] for p in paths}
    assert subjects == {f"sub-{i:02d}" for i in range(36)}
    assert all(len(sha) == 64 and size > 0 for _, size, sha in _nemar_eegmat.FILES)


def test_cli_download_qtdb(tmp_path, qt_files, capsys):
    _, served = qt_files
    parser = argparse.ArgumentParser(prog="ecgaffect datasets")
    register_download(parser.add_subparsers(dest="command"))
    with StaticServer(served) as srv:
        args = parser.parse_args(
            ["download", "qtdb", "--dest", str(tmp_path), "--subjects", "sel100",
             "--base-url", srv.url, "--no-progress"]
        )  # fmt: skip
        assert args.func(args) == 0
    assert "qtdb: 2 files in" in capsys.readouterr().out
    assert Path(tmp_path / "sel100.hea").is_file()
