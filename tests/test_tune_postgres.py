"""Two `mlpcli tune` processes on one PostgreSQL study, as two machines would share it.

The test starts a real server: a temporary cluster (initdb) on a free port of 127.0.0.1,
stopped at the end. It needs PostgreSQL's server binaries (Debian: postgresql; .ci/run
installs them and exports MLPCLI_PG_BIN) and the psycopg driver; it skips, saying which
is missing, where they are not there. PostgreSQL refuses to run as root, so under root
(CI) the server runs as the `postgres` (or `nobody`) user.
"""

import contextlib
import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.helpers import ROOT, write_config

pytest.importorskip("optuna", reason="mlpcli tune needs the 'tune' extra (optuna)")
pytest.importorskip("psycopg", reason="--storage postgresql:// needs psycopg (the 'tune' extra)")

pytestmark = pytest.mark.slow

CONFIG = f"""
name: shared
data: {{source: {ROOT / "datasets" / "iris.csv"}}}
model: {{hidden: [{{units: 8}}]}}
training: {{epochs: 25, batch_size: 16, early_stopping: null}}
tune:
  trials: 8
  space:
    optimizer.lr: {{low: 1.0e-3, high: 0.1, log: true}}
    model.hidden.0.units: {{low: 4, high: 32, int: true}}
"""


def _pg_bin() -> Path | None:
    candidates = [os.environ.get("MLPCLI_PG_BIN", "")]
    found = shutil.which("initdb")
    candidates.append(str(Path(found).resolve().parent) if found else "")
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for folder in candidates:
        if folder and (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    return None


def _server_user() -> str | None:
    """Who runs the server: ourselves, or under root a user PostgreSQL accepts."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    pytest.skip("running as root and neither a 'postgres' nor a 'nobody' user exists")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres_url():
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl) not found; set MLPCLI_PG_BIN")
    user = _server_user()
    if user is not None and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser to start PostgreSQL as another user")
    folder = Path(tempfile.mkdtemp(prefix="mlpcli-pg-"))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    prefix = ["runuser", "-u", user, "--"] if user else []
    port = _free_port()
    data = folder / "data"

    def pg(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*prefix, *args], capture_output=True, text=True, timeout=120, check=False
        )

    init = pg(str(bin_dir / "initdb"), "-D", str(data), "-U", "tune", "--auth=trust", "-E", "UTF8")
    if init.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"initdb failed: {init.stderr.strip().splitlines()[-1:]}")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = pg(
        str(bin_dir / "pg_ctl"),
        "-D",
        str(data),
        "-o",
        options,
        "-l",
        str(folder / "log"),
        "-w",
        "start",
    )
    if start.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"the PostgreSQL server did not start: {start.stderr.strip()[-200:]}")
    try:
        yield f"postgresql://tune@127.0.0.1:{port}/postgres"
    finally:
        pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def test_two_processes_share_one_postgres_study(tmp_path, postgres_url):
    config = write_config(tmp_path, CONFIG)
    # two "machines": each its own runs folder, one study in the database
    procs = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "mlpcli", "tune", str(config), "--quiet"),
                *("--storage", postgres_url, "--runs-dir", f"machine-{k}"),
            ],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in (0, 1)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    records = [json.loads((tmp_path / f"machine-{k}/shared/tune.json").read_text()) for k in (0, 1)]

    def finished(record):
        return all(t["state"] in ("complete", "pruned") for t in record["trials"])

    # the one that finished last saw every trial finished: eight, numbered once each (the
    # other may have written its last tune.json while a trial of the first still ran)
    full = max(records, key=lambda r: (len(r["trials"]), finished(r)))
    numbers = [t["number"] for t in full["trials"]]
    assert sorted(numbers) == list(range(8)), numbers
    assert finished(full), [(t["number"], t["state"]) for t in full["trials"]]
    # both machines ran trials: their run dirs are in their own folders
    pids = {t["pid"] for t in full["trials"]}
    assert len(pids) == 2, full["trials"]
    for k in (0, 1):
        mine = {p.name for p in (tmp_path / f"machine-{k}/shared").glob("trial-*")}
        assert mine, f"machine {k} ran no trial"
    shown = {t["run_dir"] for t in full["trials"]}
    ran = {p.name for k in (0, 1) for p in (tmp_path / f"machine-{k}/shared").glob("trial-*")}
    assert shown == ran
    assert full["storage"] == postgres_url.replace("postgresql://", "postgresql+psycopg://")
