"""Tests of the ``emjax`` command-line program (``emjax/cli.py``).

Most tests run the real program in a subprocess, with ``PYTHONPATH`` pointing at this
checkout so that no install is needed. The full demo is run once per module and shared:
it compiles 24 programs (K = 1..6 times four covariance types), which dominates its time.
"""

import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import emjax
from emjax import cli

REPO_ROOT = Path(__file__).resolve().parents[1]
COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ROW = re.compile(r"^\s*(\d+)\s+(full|diag|spherical|tied)\s+(-?\d+\.\d+)\s+(-?\d+\.\d+)\s")

try:
    import matplotlib  # noqa: F401

    HAVE_MATPLOTLIB = True
except ImportError:
    HAVE_MATPLOTLIB = False


def run_emjax(*args: str, cwd: Path | None = None, timeout: float = 900):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "emjax", *args],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd or REPO_ROOT,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One run of the full demo (few restarts), writing its plot to a temporary folder."""
    png = tmp_path_factory.mktemp("demo") / "faithful.png"
    proc = run_emjax("demo", "--restarts", "8", "--max-steps", "100", "--output", str(png))
    return SimpleNamespace(proc=proc, png=png)


def _table(stdout: str):
    """{(K, covariance type): BIC} from the demo's table."""
    rows = {}
    for line in stdout.splitlines():
        m = ROW.match(line)
        if m and "<- lowest BIC" not in line:
            rows[int(m.group(1)), m.group(2)] = float(m.group(4))
    return rows


@pytest.mark.slow  # the full demo run: 30 s of the default suite's 10-minute budget
def test_demo_table_and_choice(demo):
    proc = demo.proc
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    out = proc.stdout
    rows = _table(out)
    assert set(rows) == {(k, ct) for k in range(1, 7) for ct in COVARIANCE_TYPES}, out
    assert all(np.isfinite(b) for b in rows.values()), out
    assert "Total wall time" in out
    assert "including JIT compilation" in out

    # On Old Faithful the BIC's choice is K=3 with a tied covariance (mclust's "EEE, 3").
    # Checked with emjax for seeds 0-5 at 8 restarts and with 256 restarts, and with
    # scikit-learn (n_init=50, float64): tied K=3 has BIC ≈ 2314.3, ahead of tied K=4
    # (≈ 2320.2) and full K=2 (≈ 2322.2). Only few restarts of scikit-learn (n_init=1)
    # often miss the tied K=3 optimum and then pick full K=2. Among full covariances,
    # K=2 is the best.
    best = min(rows, key=rows.get)
    assert best == (3, "tied"), sorted(rows.items(), key=lambda kv: kv[1])[:5]
    assert rows[3, "tied"] == pytest.approx(2314.3, abs=0.5)
    full = {k: b for (k, ct), b in rows.items() if ct == "full"}
    assert min(full, key=full.get) == 2
    assert rows[2, "full"] == pytest.approx(2322.2, abs=0.5)

    marked = [line for line in out.splitlines() if "<- lowest BIC" in line]
    assert len(marked) == 1 and ROW.match(marked[0]).group(1, 2) == ("3", "tied")
    assert "Chosen model (lowest BIC): K=3, covariance_type='tied'" in out
    assert "covariance shared by all components" in out


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="matplotlib is not installed")
def test_demo_writes_png(demo):
    assert demo.proc.returncode == 0, demo.proc.stderr
    assert f"Plot written to {demo.png.resolve()}" in demo.proc.stdout
    data = demo.png.read_bytes()
    assert len(data) > len(PNG_MAGIC)
    assert data.startswith(PNG_MAGIC)


def test_version_and_missing_command():
    proc = run_emjax("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"emjax {emjax.__version__}"

    proc = run_emjax()
    assert proc.returncode == 2
    assert "usage: emjax" in proc.stderr
    assert "demo" in proc.stderr


@pytest.mark.parametrize(
    "args, needle",
    [
        (["demo", "--restarts", "zero"], "--restarts"),
        (["demo", "--restarts", "0"], "--restarts"),
        (["demo", "--no-such-option"], "--no-such-option"),
        (["frobnicate"], "frobnicate"),
    ],
)
def test_bad_arguments_exit_2_without_traceback(args, needle):
    proc = run_emjax(*args)
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert "error" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="the output check runs only when plotting")
def test_runtime_error_exit_1_one_line(tmp_path):
    target = str(tmp_path / "missing" / "plot.png")
    proc = run_emjax("demo", "--output", target)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("emjax: error:"), proc.stderr
    assert "does not exist" in lines[0]

    proc = run_emjax("--traceback", "demo", "--output", target)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr


# ---------------------------------------------------------------------------------------
# In-process tests of the table logic, with the fits replaced by canned results (fast).


def _fake_cell(K, ct, X, key, restarts, max_steps, *, fail=()):
    if (K, ct) in fail:
        return cli._Cell(K, ct, 0.01, status="error", error="ValueError: boom")
    D = 2
    cov = {"full": np.tile(np.eye(D), (K, 1, 1)), "diag": np.ones((K, D)),
           "spherical": np.ones(K), "tied": np.eye(D)}[ct]
    params = SimpleNamespace(weights=np.full(K, 1 / K), means=np.arange(K * D, dtype=float).reshape(K, D),
                             covariances=cov)
    bic = 1000.0 + 10 * abs(K - 2) + COVARIANCE_TYPES.index(ct)  # lowest: K=2, full
    return cli._Cell(K, ct, 0.01, model=None, params=params, log_likelihood=-bic / 2, bic=bic,
                     num_free_params=K, status="yes", converged_restarts=restarts,
                     num_restarts=restarts, num_steps=3)


def test_failed_cell_is_reported_and_left_out(monkeypatch, tmp_path, capsys):
    fail = {(2, "full"), (4, "tied")}
    monkeypatch.setattr(
        cli, "_fit_cell", lambda X, key, K, ct, r, m: _fake_cell(K, ct, X, key, r, m, fail=fail)
    )
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo", "--restarts", "4", "--no-plot"]) == 0
    out = capsys.readouterr().out
    assert "ValueError: boom" in out
    assert "2 fit(s) failed" in out
    # (2, "full") would have won; it failed, so the next best, (2, "diag"), is chosen.
    assert "Chosen model (lowest BIC): K=2, covariance_type='diag'" in out
    assert list(tmp_path.iterdir()) == []  # --no-plot writes nothing


def test_without_matplotlib_prints_install_hint(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(
        cli, "_fit_cell", lambda X, key, K, ct, r, m: _fake_cell(K, ct, X, key, r, m)
    )
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo", "--restarts", "2"]) == 0
    out = capsys.readouterr().out
    assert 'pip install "emjax[plot]"' in out
    assert "Chosen model (lowest BIC): K=2, covariance_type='full'" in out
    assert list(tmp_path.iterdir()) == []


def test_main_restores_the_callers_jax_config(monkeypatch, tmp_path):
    """A command may turn on float64 or the compile cache for its own run; a Python caller of
    main() gets its JAX configuration back."""
    import jax

    names = ("jax_enable_x64", "jax_compilation_cache_dir")
    before = {n: getattr(jax.config, n) for n in names}

    def command(args):
        jax.config.update("jax_enable_x64", not before["jax_enable_x64"])
        jax.config.update("jax_compilation_cache_dir", str(tmp_path))
        return 0

    monkeypatch.setattr(cli, "_run_demo", command)
    assert cli.main(["demo"]) == 0
    assert {n: getattr(jax.config, n) for n in names} == before


# ---------------------------------------------------------------------------------------
# emjax fit / predict / select, and the data readers behind them.

from emjax._io import _read_table, load, save  # noqa: E402

FAITHFUL = REPO_ROOT / "emjax" / "datasets" / "old_faithful.csv"


def _cache_args() -> list[str]:
    """The test suite's compile cache for subprocesses (see conftest.py)."""
    if os.environ.get("EMJAX_TEST_NO_CACHE"):
        return ["--no-cache"]
    return ["--cache-dir", str(Path.home() / ".cache" / "emjax-tests" / "jax")]


@pytest.fixture
def faithful(tmp_path):
    path = tmp_path / "faithful.csv"
    path.write_bytes(FAITHFUL.read_bytes())
    return path


def _csv(text: str):
    lines = text.strip().splitlines()
    return lines[0].split(","), np.array([[float(v) for v in line.split(",")] for line in lines[1:]])


def test_fit_then_predict_agrees_with_the_python_api(faithful, tmp_path, capsys):
    out = tmp_path / "gmm.npz"
    proc = run_emjax("fit", str(faithful), "--model", "gmm", "--components", "2",
                     "--restarts", "2", "--max-steps", "30", "--output", str(out),
                     *_cache_args(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no progress lines when stderr is not a terminal
    text = proc.stdout
    assert "272 rows x 2 columns; columns used (from the header row): eruptions, waiting" in text
    row = next(line for line in text.splitlines() if line.startswith("gmm "))
    _, K, loglik, elbo, bic, steps, converged, _ = row.split()
    assert K == "2" and converged.endswith("/2")
    assert "Components in order of mean eruptions" in text
    assert f"Model saved to {out}" in text

    model, params, header = load(out, return_metadata=True)
    X = np.loadtxt(faithful, delimiter=",", skiprows=1)
    assert isinstance(model, emjax.GaussianMixture) and model.covariance_type == "full"
    assert header["dtype"] == "float64"
    meta = header["metadata"]
    assert meta["columns"] == ["eruptions", "waiting"] and meta["num_rows"] == 272
    # The printed log-likelihood and BIC are those of the saved parameters.
    assert float(loglik) == pytest.approx(float(model.log_likelihood(params, X)), abs=1e-3)
    assert float(bic) == pytest.approx(float(model.bic(params, X)), abs=1e-2)
    assert meta["log_likelihood"] == pytest.approx(float(loglik), abs=1e-3)
    # Two components on Old Faithful: scikit-learn's optimum (n_init=50, float64).
    assert float(loglik) == pytest.approx(-1130.264, abs=0.01)

    # `emjax predict` in-process (the subprocess costs a JAX import; the slow tests run it).
    proba_csv = tmp_path / "proba.csv"
    assert cli.main(["predict", str(out), str(faithful), "--no-cache"]) == 0
    names, labels = _csv(capsys.readouterr().out)
    assert names == ["label"]
    np.testing.assert_array_equal(labels[:, 0], np.asarray(model.predict(params, X)))
    # The printout numbers each component by the label `predict` gives it.
    printed = [int(line.split()[1].rstrip(":")) for line in text.splitlines()
               if line.startswith("  component ")]
    means = np.asarray(params.means)
    assert printed == list(np.argsort(means[:, 0]))

    assert cli.main(["predict", str(out), str(faithful), "--proba", "--output", str(proba_csv),
                     "--no-cache"]) == 0
    names, proba = _csv(proba_csv.read_text())
    assert names == ["prob_0", "prob_1"]
    np.testing.assert_allclose(proba, np.asarray(model.predict_proba(params, X)), rtol=1e-7,
                               atol=1e-12)


def _saved_gmm(tmp_path, columns=("eruptions", "waiting")):
    gmm = emjax.GaussianMixture(2, "diag")
    params = gmm.make_params(weights=[0.4, 0.6], means=[[2.0, 55.0], [4.3, 80.0]],
                             covariances=[[0.1, 30.0], [0.2, 35.0]])
    return save(tmp_path / "saved.npz", gmm, params,
                metadata={"columns": list(columns), "has_header": True})


def _write(path: Path, content) -> str:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return str(path)


def test_command_errors_are_one_line(tmp_path, capsys):
    """Each error a user can act on: exit code 1, one line naming the problem (in-process,
    before any compute)."""
    saved = str(_saved_gmm(tmp_path))
    text = _write(tmp_path / "text.csv", "a,name,b\n1,x,2\n3,y,4\n")
    nan = _write(tmp_path / "nan.csv", "a,b\n1,2\nNA,4\n5,\n7,8\n")
    binary = _write(tmp_path / "bin.csv", b"\x00\x01\xff\xfe\x00")
    three = _write(tmp_path / "three.csv", "1,2,3\n4,5,6\n")
    ragged = _write(tmp_path / "ragged.csv", "a,b\n1,2\n3\n")
    not_npz = _write(tmp_path / "params.npz", "not an archive")
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.ones(2))
    good = _write(tmp_path / "good.csv", "eruptions,waiting\n3.6,79\n1.8,54\n")
    cases = [
        (["fit", str(tmp_path / "missing.csv")], "data file", "missing.csv' does not exist"),
        (["fit", text], "column 'name'", "line 2 has 'x'"),
        (["fit", nan], "2 row(s): line 3 (a); line 4 (b)", "remove or impute"),
        (["fit", binary], "cannot read", "not UTF-8"),
        (["fit", ragged], "line 3: 1 field(s)", "header has 2"),
        (["fit", text, "--columns", "a,zz"], "no column 'zz'", "'a', 'name', 'b'"),
        (["fit", str(tmp_path)], "is a directory", "--model lda"),
        (["fit", good, "--model", "kmeans", "--covariance-type", "diag"],
         "--covariance-type does not apply", "kmeans"),
        (["fit", good, "--model", "gmm", "--lengths", "1,1"], "--lengths", "hmm"),
        (["fit", good, "--output", str(tmp_path / "no" / "x.npz")], "--output", "does not exist"),
        (["predict", not_npz, good], "params.npz is not an emjax model file", "not a .npz"),
        (["predict", str(other), good], "other.npz is not an emjax model file", "__emjax__"),
        (["predict", str(tmp_path / "none.npz"), good], "PARAMS file", "does not exist"),
        (["predict", saved, three], "three.csv has 3 column(s)", "fitted to 2 (eruptions, waiting)"),
        (["predict", saved, nan], "missing, NaN or infinite", "line 3 (a)"),
        (["predict", saved, good, "--lengths", "2"], "--lengths", "hidden Markov"),
    ]
    for args, *needles in cases:
        code = cli.main([*args, "--no-cache"])
        err = capsys.readouterr().err
        assert code == 1, (args, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("emjax: error:"), (args, err)
        assert "Traceback" not in err
        for needle in needles:
            assert needle in lines[0], (args, lines[0])

    assert cli.main(["fit", good, "--model", "foo"]) == 2  # argparse: invalid choice
    err = capsys.readouterr().err
    assert "invalid choice: 'foo'" in err and "gmm" in err
    assert cli.main(["--traceback", "fit", text, "--no-cache"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_predict_picks_the_saved_columns_by_name(tmp_path, capsys):
    saved = str(_saved_gmm(tmp_path))
    # Extra and reordered columns: the saved names choose and order them.
    data = _write(tmp_path / "wide.csv", "id,waiting,eruptions\n1,79,3.6\n2,54,1.8\n")
    assert cli.main(["predict", saved, data, "--no-cache"]) == 0
    names, labels = _csv(capsys.readouterr().out)
    assert names == ["label"] and labels[:, 0].tolist() == [1, 0]


def test_read_table_formats(tmp_path):
    t = _read_table(_write(tmp_path / "a.csv", "1.5,2\n3,4e1\n"))
    assert not t.has_header and t.columns == ("column 1", "column 2")
    np.testing.assert_array_equal(t.values, [[1.5, 2.0], [3.0, 40.0]])
    t = _read_table(_write(tmp_path / "b.csv", '"x";"y"\n# comment\n1;2\n\n3;4\n'))
    assert t.has_header and t.columns == ("x", "y") and t.lines == (3, 5)
    t = _read_table(_write(tmp_path / "c.tsv", "x\ty\tz\n1\t2\t3\n"), columns=["3", "x"])
    assert t.columns == ("z", "x") and t.values.tolist() == [[3.0, 1.0]]
    np.save(tmp_path / "d.npy", np.arange(4))
    t = _read_table(tmp_path / "d.npy")
    assert t.values.shape == (4, 1) and t.kind == "npy"
    np.save(tmp_path / "e.npy", np.array([[1.0, np.nan], [2.0, 3.0]]))
    with pytest.raises(ValueError, match=r"1 row\(s\): row 0 \(column 2\)"):
        _read_table(tmp_path / "e.npy")
    # A first row with a word where the next row has a number is a header.
    t = _read_table(_write(tmp_path / "f.csv", "width,2\n1,2\n"))
    assert t.has_header and t.columns == ("width", "2")


def test_progress_only_on_a_terminal(monkeypatch, capsys):
    args = SimpleNamespace(quiet=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert cli._fit_options(args, "x") == {}
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    options = cli._fit_options(args, "emjax fit gmm")
    assert cli._fit_options(SimpleNamespace(quiet=True), "x") == {}
    assert set(options) == {"progress"}
    options["progress"]({"step": 40, "elbo": -1130.26, "num_converged": 3, "num_restarts": 8,
                         "elapsed": 2.04, "final": True})
    err = capsys.readouterr().err
    assert err.endswith("emjax fit gmm: step 40, ELBO -1130.26, 3/8 restarts converged, 2.0 s\n")


# ------------------------------------------------------------------ slow: every model, select
def _fit_and_predict(tmp_path, data, model, *extra_fit, extra_predict=(), proba=False):
    out = tmp_path / f"{model}.npz"
    png = tmp_path / f"{model}.png"
    proc = run_emjax("fit", str(data), "--model", model, "--restarts", "2", "--max-steps", "40",
                     "--output", str(out), *extra_fit, *_cache_args(),
                     *(["--plot", str(png)] if HAVE_MATPLOTLIB else []), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    if HAVE_MATPLOTLIB:
        assert png.read_bytes().startswith(PNG_MAGIC)
    pred = run_emjax("predict", str(out), str(data), *extra_predict,
                     *(["--proba"] if proba else []), *_cache_args(), cwd=tmp_path)
    assert pred.returncode == 0, pred.stderr
    return proc.stdout, pred.stdout, out


@pytest.mark.slow
def test_fit_kmeans_hmm_bgmm(faithful, tmp_path):
    X = np.loadtxt(faithful, delimiter=",", skiprows=1)
    out, pred, path = _fit_and_predict(tmp_path, faithful, "kmeans")
    assert "Inertia" in out and "cluster 0:" in out
    model, params = load(path)
    np.testing.assert_array_equal(_csv(pred)[1][:, 0], np.asarray(model.predict(params, X)))
    # k-means on Old Faithful: scikit-learn's inertia (n_init=10).
    assert float(model.inertia(params, X)) == pytest.approx(8901.77, abs=0.05)

    out, pred, path = _fit_and_predict(tmp_path, faithful, "hmm", "--lengths", "100,172",
                                       extra_predict=("--lengths", "100,172"))
    assert "transition matrix" in out
    model, params = load(path)
    names, states = _csv(pred)
    assert names == ["state"]
    np.testing.assert_array_equal(
        states[:, 0], np.asarray(model.predict(params, (X, np.array([100, 172])))))

    out, pred, path = _fit_and_predict(tmp_path, faithful, "bgmm", "-k", "4",
                                       "--covariance-type", "diag", proba=True)
    assert "expected weight" in out
    model, params = load(path)
    np.testing.assert_allclose(_csv(pred)[1], np.asarray(model.predict_proba(params, X)),
                               rtol=1e-7, atol=1e-12)


@pytest.mark.slow
def test_fit_lda_on_a_folder_of_documents(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    fruit, cars = "apple banana cherry juice".split(), "engine wheel road motor".split()
    rng = np.random.default_rng(0)
    for d in range(10):
        words = rng.choice(fruit if d % 2 else cars, 25)
        (docs / f"d{d}.txt").write_text(" ".join(w.upper() if i % 3 == 0 else w
                                                 for i, w in enumerate(words)) + ", 2024!")
    out, pred, path = _fit_and_predict(tmp_path, docs, "lda", "-k", "2")
    assert "10 documents, a vocabulary of 8 words" in out
    model, params, header = load(path, return_metadata=True)
    assert header["metadata"]["vocabulary"] == sorted(fruit + cars)
    lines = pred.strip().splitlines()
    assert lines[0] == "document,topic_0,topic_1" and lines[1].startswith("d0.txt,")
    theta = np.array([[float(v) for v in line.split(",")[1:]] for line in lines[1:]])
    np.testing.assert_allclose(theta.sum(axis=1), 1.0, rtol=1e-6)
    # The two kinds of document get different topics.
    topic = theta.argmax(axis=1)
    assert len(set(topic[0::2])) == 1 and len(set(topic[1::2])) == 1 and topic[0] != topic[1]


@pytest.mark.slow
def test_fit_matches_emjax_fit(faithful, tmp_path):
    import jax

    out = tmp_path / "m.npz"
    proc = run_emjax("fit", str(faithful), "-k", "3", "--covariance-type", "tied", "--restarts",
                     "3", "--max-steps", "50", "--seed", "7", "--output", str(out), *_cache_args())
    assert proc.returncode == 0, proc.stderr
    _, params = load(out)
    X = emjax.datasets.load_old_faithful()
    sol = emjax.fit(emjax.GaussianMixture(3, "tied"), X, key=jax.random.key(7), num_restarts=3,
                    max_steps=50)
    np.testing.assert_allclose(np.asarray(params.means), np.asarray(sol.params.means), rtol=1e-10)


@pytest.mark.slow
def test_select_command(faithful, tmp_path):
    best = tmp_path / "best.npz"
    png = tmp_path / "bic.png"
    proc = run_emjax("select", str(faithful), "--max-components", "3", "--covariance-types",
                     "full,tied", "--restarts", "4", "--output", str(best),
                     *(["--plot", str(png)] if HAVE_MATPLOTLIB else []), *_cache_args(),
                     cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Chosen by BIC: K=3, covariance_type='tied'" in proc.stdout
    model, params, header = load(best, return_metadata=True)
    assert model.num_components == 3 and model.covariance_type == "tied"
    assert header["metadata"]["bic"] == pytest.approx(2314.3, abs=0.5)
    if HAVE_MATPLOTLIB:
        assert png.read_bytes().startswith(PNG_MAGIC)
    pred = run_emjax("predict", str(best), str(faithful), *_cache_args())
    assert pred.returncode == 0, pred.stderr
    X = emjax.datasets.load_old_faithful()
    np.testing.assert_array_equal(_csv(pred.stdout)[1][:, 0], np.asarray(model.predict(params, X)))
