"""Saving and loading fitted models: `save`, `load` and `read_metadata`.

A model file is one NumPy ``.npz`` archive. Its entries are

- every array leaf of the model (priors, ``reg_covar``, ...) and of the parameters, each
  under its path, e.g. ``model.reg_covar`` or ``params.emissions.means``;
- ``__emjax__``: a JSON text with the format name and version, the emjax version, the
  model's class and static configuration, the parameters' dtype, a description of both
  pytrees (which class, which field holds which array or plain value) and the user's
  metadata.

Nothing in the file is executed: it is read with ``allow_pickle=False``, and only the
emjax classes of an explicit allow-list are rebuilt, each validated by its own
constructor (the model) and ``make_params`` (the parameters) before it is returned. A
model that holds a Python function (`emjax.DensityMixture`, `emjax.DensityEmissions`)
cannot be saved in such a file.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import tempfile
import warnings
import zipfile
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._models._bgmm import BayesianGaussianMixture, BayesianGaussianMixtureParams
from ._models._emissions import (
    CategoricalEmissionParams,
    CategoricalEmissions,
    GaussianEmissionParams,
    GaussianEmissions,
    GaussianMixtureEmissionParams,
    GaussianMixtureEmissions,
    PoissonEmissionParams,
    PoissonEmissions,
)
from ._models._experts import MixtureOfExperts, MixtureOfExpertsParams
from ._models._gmm import GaussianMixture, GaussianMixtureParams
from ._models._hmm import HiddenMarkovModel, HMMParams
from ._models._kmeans import KMeans, KMeansParams
from ._models._lda import LatentDirichletAllocation, LDAParams
from ._models._student_t import StudentTMixture, StudentTMixtureParams

__all__ = ["load", "read_metadata", "save"]

FORMAT_NAME = "emjax-model"
FORMAT_VERSION = 1
_HEADER = "__emjax__"

# Each model class that can be saved, with the class of its parameters.
_PARAMS_OF = {
    GaussianMixture: GaussianMixtureParams,
    KMeans: KMeansParams,
    BayesianGaussianMixture: BayesianGaussianMixtureParams,
    HiddenMarkovModel: HMMParams,
    LatentDirichletAllocation: LDAParams,
    StudentTMixture: StudentTMixtureParams,
    MixtureOfExperts: MixtureOfExpertsParams,
}
# Emission models of a HiddenMarkovModel, with the class of their parameters.
_EMISSION_PARAMS_OF = {
    GaussianEmissions: GaussianEmissionParams,
    GaussianMixtureEmissions: GaussianMixtureEmissionParams,
    CategoricalEmissions: CategoricalEmissionParams,
    PoissonEmissions: PoissonEmissionParams,
}
# The allow-list: the only classes a file may name.
_CONFIGURED = (*_PARAMS_OF, *_EMISSION_PARAMS_OF)  # validated by their constructor
_ALLOWED = {cls.__name__: cls for cls in
            (*_CONFIGURED, *_PARAMS_OF.values(), *_EMISSION_PARAMS_OF.values())}
# Constructor arguments whose name differs from the field they set.
_ARGUMENT_OF_FIELD = {MixtureOfExperts: {"num_components": "num_experts"}}
_ARRAY_KINDS = "biuf"  # booleans, integers, floats: what a model or its parameters hold


class _FormatError(ValueError):
    """A malformed file; the caller adds the file's name."""


# --------------------------------------------------------------------------- save
def save(path, model, params, *, metadata=None) -> Path:
    """Save a model and its fitted parameters to one ``.npz`` file.

    The file holds every array of the model and of the parameters, and a JSON entry with
    the format version, the emjax version, the model's class and static configuration,
    the parameters' dtype and ``metadata``. It can be read back by `emjax.load` (and by
    ``emjax predict``) without executing anything from the file. It is written to a
    temporary file first and then renamed, so an existing file is never left half written.

    Args:
        path: the file to write (written as given: no ``.npz`` is appended).
        model: an emjax model: `GaussianMixture`, `KMeans`, `BayesianGaussianMixture`,
            `HiddenMarkovModel` (with Gaussian, Gaussian-mixture, categorical or Poisson
            emissions), `LatentDirichletAllocation`, `StudentTMixture` or
            `MixtureOfExperts`.
        params: its parameters, e.g. ``Solution.params`` (one set, not a batch).
        metadata: optional dict of JSON-serialisable values stored with the model (e.g.
            column names); `emjax.load` with ``return_metadata=True`` gives it back.

    Returns:
        The path written, as a `pathlib.Path`.

    Raises:
        TypeError: ``model`` is not a model that can be saved (one holding a Python
            function, such as `emjax.DensityMixture`, or not an emjax model), ``params``
            are not that model's parameters, or ``metadata`` is not a dict of
            JSON-serialisable values.
        ValueError: ``path`` is a directory or its directory does not exist.

    Example:
        >>> import os, tempfile, numpy as np, emjax
        >>> gmm = emjax.GaussianMixture(2, covariance_type="diag")
        >>> params = gmm.make_params(weights=[0.3, 0.7], means=[[0.0, 0.0], [3.0, 1.0]],
        ...                          covariances=[[1.0, 2.0], [0.5, 0.5]])
        >>> path = os.path.join(tempfile.mkdtemp(), "gmm.npz")
        >>> _ = emjax.save(path, gmm, params, metadata={"columns": ["x", "y"]})
        >>> model, loaded = emjax.load(path)
        >>> model.covariance_type, np.asarray(loaded.means).tolist()
        ('diag', [[0.0, 0.0], [3.0, 1.0]])
        >>> emjax.read_metadata(path)["metadata"]
        {'columns': ['x', 'y']}
    """
    path = Path(os.fspath(path)).expanduser()
    params_class = _check_pair(model, params)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) for k in metadata):
        raise TypeError(f"`metadata` must be a dict with string keys; got {type(metadata).__name__}.")
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as e:
        raise TypeError(f"`metadata` must hold JSON-serialisable values only: {e}") from None

    arrays: dict[str, np.ndarray] = {}
    model_tree = _encode(model, "model", arrays)
    params_tree = _encode(params, "params", arrays)
    from . import __version__

    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "emjax_version": __version__,
        "model_class": type(model).__name__,
        "params_class": params_class.__name__,
        "config": _config(model_tree),
        "dtype": _params_dtype(params),
        "model": model_tree,
        "params": params_tree,
        "metadata": metadata,
    }
    if path.is_dir():
        raise ValueError(f"`path` {str(path)!r} is a directory; give a file name.")
    if not path.parent.is_dir():
        raise ValueError(f"`path`: directory {str(path.parent)!r} does not exist.")
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **{_HEADER: np.array(json.dumps(header))}, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _check_pair(model, params) -> type:
    """The parameters' class, after checking that ``model`` can be saved with ``params``."""
    if isinstance(model, eqx.Module):
        for f in dataclasses.fields(model):
            if callable(getattr(model, f.name, None)) and not isinstance(
                    getattr(model, f.name), eqx.Module):
                raise TypeError(
                    f"{type(model).__name__} holds a Python function (field {f.name!r}), which "
                    "a safe model file cannot store. Save its parameters yourself (e.g. "
                    "np.savez) and rebuild the model in code."
                )
    expected = _PARAMS_OF.get(type(model))
    if expected is None:
        names = ", ".join(c.__name__ for c in _PARAMS_OF)
        raise TypeError(f"`model` must be one of the emjax models that can be saved ({names}); "
                        f"got {type(model).__name__}.")
    if isinstance(model, HiddenMarkovModel):
        emissions = model.emissions
        if type(emissions) not in _EMISSION_PARAMS_OF:
            raise TypeError(
                f"A HiddenMarkovModel with {type(emissions).__name__} cannot be saved: it holds "
                "a Python function. Emissions that can: "
                + ", ".join(c.__name__ for c in _EMISSION_PARAMS_OF) + "."
            )
    if type(params) is not expected:
        raise TypeError(f"`params` of a {type(model).__name__} must be {expected.__name__} "
                        f"(e.g. Solution.params); got {type(params).__name__}.")
    if isinstance(model, HiddenMarkovModel):
        em_expected = _EMISSION_PARAMS_OF[type(model.emissions)]
        if type(params.emissions) is not em_expected:
            raise TypeError(f"`params.emissions` must be {em_expected.__name__} for "
                            f"{type(model.emissions).__name__}; got "
                            f"{type(params.emissions).__name__}.")
    return expected


def _encode(obj, where: str, arrays: dict) -> dict:
    """A JSON description of ``obj``; its arrays go into ``arrays`` under their path."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"value": obj}
    if isinstance(obj, (jax.Array, np.ndarray, np.generic)):
        if jnp.issubdtype(obj.dtype, jax.dtypes.prng_key):
            raise TypeError(f"`{where}` is a PRNG key array, which a model file does not store.")
        a = np.asarray(obj)
        if a.dtype.kind not in _ARRAY_KINDS:
            raise TypeError(f"`{where}` has dtype {a.dtype}, which a model file does not store "
                            "(booleans, integers and floats only).")
        arrays[where] = a
        return {"array": where}
    if isinstance(obj, eqx.Module):
        cls = type(obj)
        if _ALLOWED.get(cls.__name__) is not cls:
            raise TypeError(f"`{where}` is a {cls.__name__}, which emjax cannot save.")
        fields = {f.name: _encode(getattr(obj, f.name), f"{where}.{f.name}", arrays)
                  for f in dataclasses.fields(obj)}
        return {"class": cls.__name__, "fields": fields}
    if isinstance(obj, (tuple, list)):
        return {type(obj).__name__: [_encode(v, f"{where}[{i}]", arrays)
                                     for i, v in enumerate(obj)]}
    raise TypeError(f"`{where}` is a {type(obj).__name__}, which a model file cannot store.")


def _config(tree: dict) -> dict:
    """The static configuration of an encoded model, for people reading the header."""
    out = {"class": tree["class"]}
    for name, node in tree["fields"].items():
        if "value" in node:
            out[name] = node["value"]
        elif "class" in node:
            out[name] = _config(node)
    return out


def _params_dtype(params) -> str:
    floats = [a.dtype for a in jax.tree.leaves(params)
              if hasattr(a, "dtype") and jnp.issubdtype(a.dtype, jnp.floating)]
    return np.dtype(floats[0]).name if floats else "float32"


# --------------------------------------------------------------------------- load
def read_metadata(path) -> dict:
    """Read the JSON header of a model file, without building the model.

    Args:
        path: a file written by `emjax.save`.

    Returns:
        A dict with ``format``, ``format_version``, ``emjax_version``, ``model_class``,
        ``config`` (the model's static configuration), ``dtype`` (of the parameters),
        ``metadata`` (what was passed to `emjax.save`) and the description of the stored
        pytrees (``model``, ``params``).

    Raises:
        FileNotFoundError: there is no file at ``path``.
        ValueError: the file is not an emjax model file (the message names the file).

    Example:
        >>> import os, tempfile, emjax
        >>> km = emjax.KMeans(2)
        >>> path = os.path.join(tempfile.mkdtemp(), "km.npz")
        >>> _ = emjax.save(path, km, km.make_params(centers=[[0.0], [1.0]]))
        >>> meta = emjax.read_metadata(path)
        >>> meta["model_class"], meta["config"]["num_clusters"], meta["format_version"]
        ('KMeans', 2, 1)
    """
    path = Path(os.fspath(path)).expanduser()
    with _open(path) as archive:
        return _header(archive, path)


def load(path, *, return_metadata: bool = False):
    """Load a model and its parameters saved by `emjax.save` (or ``emjax fit``).

    The file is read with ``allow_pickle=False``; only emjax's own model, emission and
    parameter classes are rebuilt, and the model's configuration and the parameters are
    validated (by the model's constructor and ``make_params``) before they are returned.
    Arrays keep the dtype they were saved with; a float64 file read while JAX's
    ``jax_enable_x64`` is off gives float32 arrays (with a warning).

    Args:
        path: a file written by `emjax.save`.
        return_metadata: also return the file's header (see `emjax.read_metadata`);
            the user's metadata are in its ``"metadata"`` entry.

    Returns:
        ``(model, params)``, or ``(model, params, header)`` with ``return_metadata=True``.

    Raises:
        FileNotFoundError: there is no file at ``path``.
        ValueError: the file is not an emjax model file, was written by a newer format
            version, names a class that is not an emjax model, or holds a configuration
            or parameters that are not valid (the message names the file).

    Example:
        >>> import os, tempfile, numpy as np, emjax
        >>> hmm = emjax.HiddenMarkovModel(2, emissions=emjax.PoissonEmissions())
        >>> p = hmm.make_params(initial=[0.5, 0.5], transition=[[0.9, 0.1], [0.2, 0.8]],
        ...                     rates=[[1.0], [8.0]])
        >>> path = os.path.join(tempfile.mkdtemp(), "hmm.npz")
        >>> _ = emjax.save(path, hmm, p, metadata={"note": "counts per hour"})
        >>> model, params, header = emjax.load(path, return_metadata=True)
        >>> type(model.emissions).__name__, np.asarray(params.transition, float).round(3).tolist()
        ('PoissonEmissions', [[0.9, 0.1], [0.2, 0.8]])
        >>> header["metadata"]["note"]
        'counts per hour'
    """
    path = Path(os.fspath(path)).expanduser()
    with _open(path) as archive:
        header = _header(archive, path)
        try:
            arrays = {name: archive[name] for name in archive.files if name != _HEADER}
        except (ValueError, OSError, zipfile.BadZipFile) as e:
            raise ValueError(f"{path}: an array in the file cannot be read ({e}).") from None
    if header["dtype"] == "float64" and not jax.config.jax_enable_x64:
        warnings.warn(
            f"{path} holds float64 parameters but jax_enable_x64 is off: they are loaded as "
            "float32. Turn on jax.config.update('jax_enable_x64', True) first to keep float64.",
            UserWarning, stacklevel=2,
        )
    try:
        used: set[str] = set()
        model = _decode(header["model"], arrays, used, "model")
        params = _decode(header["params"], arrays, used, "params")
        if set(arrays) - used:
            raise _FormatError(f"unexpected arrays {sorted(set(arrays) - used)}")
        _check_loaded(model, params, header)
    except _FormatError as e:
        raise ValueError(f"{path}: not a valid emjax model file: {e}.") from None
    if return_metadata:
        return model, params, header
    return model, params


class _open:
    """``np.load`` of a model file, with its failures turned into messages naming the file."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        path = self.path
        if path.is_dir():
            raise ValueError(f"{path} is a directory, not an emjax model file.")
        if not path.exists():
            raise FileNotFoundError(f"No such model file: {path}")
        try:
            with open(path, "rb") as f:
                magic = f.read(6)
        except OSError as e:
            raise ValueError(f"cannot read {path}: {e.strerror or e}") from None
        if magic == b"\x93NUMPY":
            raise ValueError(f"{path} is not an emjax model file (a single NumPy array, not an "
                             ".npz archive written by emjax.save).")
        if not zipfile.is_zipfile(path):
            raise ValueError(f"{path} is not an emjax model file (not a .npz archive).")
        try:
            archive = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise FileNotFoundError(f"No such model file: {path}") from None
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            raise ValueError(f"{path} is not an emjax model file (not a NumPy .npz archive: "
                             f"{e}).") from None
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError(f"{path} is not an emjax model file (a single NumPy array, not an "
                             ".npz archive written by emjax.save).")
        self.archive = archive
        return archive

    def __exit__(self, *exc):
        self.archive.close()
        return False


def _header(archive, path: Path) -> dict:
    if _HEADER not in archive.files:
        raise ValueError(f"{path} is not an emjax model file (a .npz archive without the "
                         f"{_HEADER!r} entry that emjax.save writes).")
    try:
        entry = archive[_HEADER]
        header = json.loads(str(entry[()]))
    except (ValueError, OSError, TypeError, IndexError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path}: its {_HEADER!r} entry is not readable JSON ({e}).") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ValueError(f"{path} is not an emjax model file (its header does not name the "
                         f"format {FORMAT_NAME!r}).")
    version = header.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"{path}: not a valid emjax model file: bad format_version {version!r}.")
    if version > FORMAT_VERSION:
        raise ValueError(f"{path} was written in format version {version} (emjax "
                         f"{header.get('emjax_version')}); this emjax reads up to version "
                         f"{FORMAT_VERSION}: upgrade emjax.")
    for key in ("model", "params", "dtype", "metadata"):
        if key not in header:
            raise ValueError(f"{path}: not a valid emjax model file: the header has no {key!r}.")
    return header


def _decode(node, arrays: dict, used: set, where: str):
    if not isinstance(node, dict) or len(node) != (2 if "class" in node else 1):
        raise _FormatError(f"malformed entry at {where}")
    if "value" in node:
        value = node["value"]
        if value is not None and not isinstance(value, (bool, int, float, str)):
            raise _FormatError(f"malformed value at {where}")
        return value
    if "array" in node:
        name = node["array"]
        if not isinstance(name, str) or name not in arrays:
            raise _FormatError(f"the array {name!r} of {where} is missing")
        a = arrays[name]
        if a.dtype.kind not in _ARRAY_KINDS:
            raise _FormatError(f"the array {name!r} has dtype {a.dtype}")
        used.add(name)
        with warnings.catch_warnings():  # float64 without x64: warned once, in `load`
            warnings.simplefilter("ignore", UserWarning)
            return jnp.asarray(a)
    for kind, build in (("tuple", tuple), ("list", list)):
        if kind in node:
            items = node[kind]
            if not isinstance(items, list):
                raise _FormatError(f"malformed {kind} at {where}")
            return build(_decode(v, arrays, used, f"{where}[{i}]") for i, v in enumerate(items))
    if "class" not in node or "fields" not in node:
        raise _FormatError(f"malformed entry at {where}")
    name, fields = node["class"], node["fields"]
    cls = _ALLOWED.get(name) if isinstance(name, str) else None
    if cls is None:
        raise _FormatError(f"{where} names the class {name!r}, which is not an emjax class this "
                           f"version can load (known: {', '.join(sorted(_ALLOWED))})")
    expected = [f.name for f in dataclasses.fields(cls)]
    if not isinstance(fields, dict) or sorted(fields) != sorted(expected):
        got = sorted(fields) if isinstance(fields, dict) else fields
        raise _FormatError(f"{where} ({name}) must have the fields {expected}; the file has {got}")
    values = {k: _decode(fields[k], arrays, used, f"{where}.{k}") for k in expected}
    if cls in _CONFIGURED:
        _validate_config(cls, values, where)
    # Rebuilt as equinox's own unflattening does (its fields set on a new instance), so
    # that every array keeps the dtype it was saved with; the constructor call above has
    # validated the values.
    obj = object.__new__(cls)
    for k, v in values.items():
        object.__setattr__(obj, k, v)
    return obj


def _validate_config(cls, values: dict, where: str) -> None:
    """Run ``cls``'s constructor on the saved values: it checks every option and prior."""
    rename = _ARGUMENT_OF_FIELD.get(cls, {})
    kwargs = {rename.get(k, k): v for k, v in values.items()}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise _FormatError(f"the saved configuration of {where} ({cls.__name__}) is invalid: "
                           f"{e}") from None


def _check_loaded(model, params, header: dict) -> None:
    """The parameters belong to the model and pass its ``make_params``' checks."""
    try:
        _check_pair(model, params)
    except TypeError as e:
        raise _FormatError(str(e)) from None
    if isinstance(model, HiddenMarkovModel):
        kwargs = {"initial": params.initial, "transition": params.transition,
                  "emissions": params.emissions}
    else:
        accepted = inspect.signature(model.make_params).parameters
        kwargs = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)
                  if f.name in accepted}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.make_params(**kwargs)
    except (TypeError, ValueError) as e:
        raise _FormatError(f"the saved parameters do not fit the saved {type(model).__name__}: "
                           f"{e}") from None


# --------------------------------------------------------------------------- data files
# Readers of data tables for the command line. They return NumPy arrays and raise
# ValueError (or FileNotFoundError) with a message that names the file, the column and the
# line, so that the command can print it as it is.

_MISSING_TOKENS = frozenset({"", "na", "nan", "n/a", "null", "none", "?", "-"})
_TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".dat")


@dataclasses.dataclass(frozen=True)
class _Table:
    """Numeric data read from a CSV or ``.npy`` file.

    ``values`` is ``(N, D)`` float64; ``columns`` names the columns used (the header's
    names, or ``"column j"`` counted from 1); ``lines`` gives the file line of each row
    (CSV) or None (``.npy``, whose rows are counted from 0).
    """

    values: np.ndarray
    columns: tuple[str, ...]
    has_header: bool
    lines: tuple[int, ...] | None
    kind: str  # "csv" or "npy"

    def where(self, row: int) -> str:
        return f"line {self.lines[row]}" if self.lines is not None else f"row {row}"


def _read_table(path, columns=None) -> _Table:
    """Read an ``(N, D)`` numeric table from a CSV/TSV text file (with or without a header
    row) or a ``.npy`` array; ``columns`` (names or 1-based numbers) picks some of them."""
    path = Path(os.fspath(path)).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"data file {str(path)!r} does not exist")
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a directory; give a CSV or .npy file (a folder of "
                         ".txt documents is for --model lda)")
    if path.suffix.lower() == ".npz":
        raise ValueError(f"{str(path)!r} is a .npz archive; data must be a CSV or .npy file "
                         "(a .npz is what `emjax fit` writes, for `emjax predict PARAMS.npz`)")
    if path.suffix.lower() == ".npy":
        table = _read_npy(path)
    else:
        table = _read_csv(path)
    if columns is not None:
        table = _pick_columns(table, columns, path)
    return _check_finite_table(table, path)


def _read_npy(path: Path) -> _Table:
    try:
        a = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"cannot read {str(path)!r} as a NumPy .npy array: {e}") from None
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{str(path)!r} is not a single .npy array")
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{str(path)!r} holds {a.dtype} values; expected numbers")
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"{str(path)!r} holds an array of shape {a.shape}; expected "
                         "(rows, columns) or (rows,)")
    names = tuple(f"column {j + 1}" for j in range(a.shape[1]))
    return _Table(a.astype(np.float64), names, False, None, "npy")


def _is_number(text: str) -> bool:
    if text.strip().lower() in _MISSING_TOKENS:
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_csv(path: Path) -> _Table:
    import csv

    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"cannot read {str(path)!r} as text: it is not UTF-8 (a binary file? "
                         "data must be a CSV or .npy file)") from None
    except OSError as e:
        raise ValueError(f"cannot read {str(path)!r}: {e.strerror or e}") from None
    if "\x00" in text:
        raise ValueError(f"cannot read {str(path)!r} as CSV text: it holds binary data")
    lines = [(i + 1, line) for i, line in enumerate(text.splitlines())
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise ValueError(f"{str(path)!r} holds no data rows")
    first = lines[0][1]
    if path.suffix.lower() == ".tsv" or ("\t" in first and "," not in first):
        delimiter = "\t"
    elif ";" in first and "," not in first:
        delimiter = ";"
    else:
        delimiter = ","
    rows = list(csv.reader([line for _, line in lines], delimiter=delimiter))
    rows = [[v.strip() for v in row] for row in rows]
    numbers = [i for i, _ in lines]
    # The first row is a header if it has a non-number where the next row has a number, or
    # if it has no number at all.
    head = rows[0]
    numeric = [_is_number(v) for v in head]
    has_header = not any(numeric) or (
        len(rows) > 1 and any(not ok and j < len(rows[1]) and _is_number(rows[1][j])
                              and rows[1][j] != "" for j, ok in enumerate(numeric)))
    if has_header:
        names = tuple(v or f"column {j + 1}" for j, v in enumerate(head))
        rows, numbers = rows[1:], numbers[1:]
        if not rows:
            raise ValueError(f"{str(path)!r} has a header row but no data rows")
    else:
        names = tuple(f"column {j + 1}" for j in range(len(head)))
    width = len(names)
    for row, line in zip(rows, numbers, strict=True):
        if len(row) != width:
            raise ValueError(f"{str(path)!r}, line {line}: {len(row)} field(s), but the "
                             f"{'header' if has_header else 'first row'} has {width}")
    return _Table(np.array(rows, dtype=object).reshape(len(rows), width), names, has_header,
                  tuple(numbers), "csv")


def _pick_columns(table: _Table, columns, path: Path) -> _Table:
    """The columns named in ``columns`` (names or numbers from 1), in that order."""
    picked = []
    for item in columns:
        item = str(item).strip()
        if item in table.columns:
            picked.append(table.columns.index(item))
        elif item.isdigit() and 1 <= int(item) <= len(table.columns):
            picked.append(int(item) - 1)
        else:
            known = ", ".join(repr(c) for c in table.columns)
            raise ValueError(f"--columns: {str(path)!r} has no column {item!r} (its columns: "
                             f"{known}; or give numbers from 1 to {len(table.columns)})")
    if len(set(picked)) != len(picked):
        raise ValueError("--columns: a column is named twice")
    return dataclasses.replace(table, values=table.values[:, picked],
                               columns=tuple(table.columns[j] for j in picked))


def _check_finite_table(table: _Table, path: Path) -> _Table:
    """Convert CSV text to float64 (naming the first non-numeric cell of a column) and
    refuse missing or non-finite values (naming their rows and columns)."""
    values = table.values
    if values.dtype == object:
        out = np.empty(values.shape, np.float64)
        for j, name in enumerate(table.columns):
            for i, text in enumerate(values[:, j]):
                if text.lower() in _MISSING_TOKENS:
                    out[i, j] = np.nan
                    continue
                try:
                    out[i, j] = float(text)
                except ValueError:
                    raise ValueError(
                        f"column {name!r} of {str(path)!r} is not numeric: {table.where(i)} has "
                        f"{text!r}; choose numeric columns with --columns") from None
        values = out
        table = dataclasses.replace(table, values=values)
    bad = ~np.isfinite(values)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        shown = "; ".join(
            f"{table.where(i)} ({', '.join(table.columns[j] for j in np.flatnonzero(bad[i]))})"
            for i in rows[:5])
        more = f"; and {len(rows) - 5} more row(s)" if len(rows) > 5 else ""
        raise ValueError(f"{str(path)!r} has missing, NaN or infinite values in {len(rows)} "
                         f"row(s): {shown}{more}; remove or impute them")
    return table


def _tokenize(text: str) -> list[str]:
    """Lower-case words: runs of letters (any alphabet), apostrophes inside words kept."""
    import re

    return re.findall(r"[^\W\d_]+(?:'[^\W\d_]+)*", text.lower())


def _read_documents(folder) -> tuple[list[str], list[list[str]]]:
    """The ``.txt`` files of ``folder`` (sorted by name) and their tokens."""
    folder = Path(os.fspath(folder)).expanduser()
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".txt" and p.is_file())
    if not files:
        raise ValueError(f"folder {str(folder)!r} holds no .txt files")
    tokens = []
    for p in files:
        try:
            tokens.append(_tokenize(p.read_text(encoding="utf-8", errors="replace")))
        except OSError as e:
            raise ValueError(f"cannot read {str(p)!r}: {e.strerror or e}") from None
    return [p.name for p in files], tokens


def _count_words(tokens: list[list[str]], vocabulary: list[str]) -> tuple[np.ndarray, int]:
    """The ``(M, V)`` document-term counts over ``vocabulary``, and the number of tokens
    that are not in it (ignored)."""
    index = {w: v for v, w in enumerate(vocabulary)}
    counts = np.zeros((len(tokens), len(vocabulary)), np.float64)
    unknown = 0
    for d, doc in enumerate(tokens):
        for w in doc:
            v = index.get(w)
            if v is None:
                unknown += 1
            else:
                counts[d, v] += 1
    return counts, unknown
