"""Converting a model an earlier version saved as a pickle (``model.pkl``) to ``model.npz`` + ``model.json``.

The one place that unpickles, run only by an operator on a trusted machine
(``python -m recsys models convert-legacy MODEL_ID|PATH``); the pipeline and the API never
unpickle (``recsys.families.hybrid.files.load_model`` refuses a ``model.pkl``). As a second line of defence
the unpickler resolves only the globals a pickled ``HybridModel`` is made of (its class,
the feature spaces, LightFM, numpy arrays and random state, pandas indexes and series):
any other one (``os.system``, ``builtins.eval``, ...) is refused before it is called.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

from recsys.families.files import ModelArtifactError
from recsys.families.hybrid.files import encode
from recsys.families.hybrid.model import HybridModel

_NUMPY_CORE = ("numpy.core", "numpy._core")  # numpy < 2 and numpy 2 pickle the same helpers here
# where the model's own classes were when it was pickled (recsys.model, before the families' packages)
MOVED = {("recsys.model.hybrid", "HybridModel"): ("recsys.families.hybrid.model", "HybridModel"),
         ("recsys.model.features", "FeatureSpace"): ("recsys.families.hybrid.features", "FeatureSpace")}
ALLOWED_GLOBALS = frozenset({
    *MOVED, *MOVED.values(), ("lightfm.lightfm", "LightFM"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    *((f"{core}.multiarray", name) for core in _NUMPY_CORE for name in ("_reconstruct", "scalar")),
    *((f"{core}.numeric", "_frombuffer") for core in _NUMPY_CORE),
    *(("numpy.random._pickle", f"__{kind}_ctor") for kind in ("randomstate", "bit_generator", "generator")),
    ("numpy.random", "__RandomState_ctor"), ("numpy.random.mtrand", "RandomState"),
    ("numpy.random._mt19937", "MT19937"), ("numpy.random._pcg64", "PCG64"),
    ("numpy.random.bit_generator", "SeedSequence"), ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
    ("pandas", "Index"), ("pandas", "Series"), ("pandas.core.series", "Series"),
    ("pandas.core.indexes.base", "Index"), ("pandas.core.indexes.base", "_new_Index"),
    ("pandas.core.indexes.range", "RangeIndex"), ("pandas.core.indexes.numeric", "Int64Index"),
    ("pandas.core.internals.managers", "SingleBlockManager"), ("pandas.core.internals.managers", "BlockManager"),
    ("pandas.core.internals.blocks", "new_block"), ("pandas._libs.internals", "_unpickle_block"),
    *((builtins, name) for builtins in ("builtins", "__builtin__")  # "__builtin__" in protocol 2
      for name in ("frozenset", "set", "slice", "bytes", "object")),
    ("_codecs", "encode"), ("copyreg", "_reconstructor"), ("collections", "OrderedDict"),
})


class LegacyModelError(ModelArtifactError):
    """A ``model.pkl`` that is not a pickled ``HybridModel`` (or refers to anything else)."""


class _ModelUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED_GLOBALS:
            raise LegacyModelError(f"the pickle refers to {module}.{name}, which is no part of a HybridModel: refused "
                                   "(nothing of it was run)")
        return super().find_class(*MOVED.get((module, name), (module, name)))


def unpickle_model(data: bytes, where: str) -> HybridModel:
    """The ``HybridModel`` of a legacy ``model.pkl``'s bytes (``where`` names the file in errors)."""
    try:
        obj = _ModelUnpickler(io.BytesIO(data)).load()
    except LegacyModelError as exc:
        raise LegacyModelError(f"{where}: {exc}") from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError) as exc:
        raise LegacyModelError(f"{where}: not a pickled HybridModel ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, HybridModel):
        raise LegacyModelError(f"{where} holds a {type(obj).__name__}, not a HybridModel")
    return obj


def convert_file(path: Path, out_dir: Path | None = None) -> dict[str, Path]:
    """Write ``model.npz`` and ``model.json`` of the pickled model at ``path`` into ``out_dir`` (default: its
    folder); returns their paths. For a pickle outside the artifact store (upload both files, then
    record them with ``models trust``)."""
    model = unpickle_model(Path(path).read_bytes(), str(path))
    out_dir = Path(out_dir or Path(path).parent)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, data in encode(model).items():
        (out_dir / name).write_bytes(data)
        written[name] = out_dir / name
    return written
