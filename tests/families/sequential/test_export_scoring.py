import dataclasses
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from recsys.families.sequential import config as C
from recsys.families.sequential.export import export_model
from recsys.families.sequential.scoring import add_products, encode, load_runtime, score_next, score_products
from recsys.families.sequential.train import fit_sequential
from tests.families.sequential.seq_helpers import FIRST_ID, N_PRODUCTS, SMALL, probe_sequences, products, successor, \
    successor_events


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    fitted = fit_sequential(successor_events(), products(), SMALL)
    return fitted, export_model(fitted, tmp_path_factory.mktemp("seq") / "model")


def torch_states(fitted, sequences) -> np.ndarray:
    vocab, length = fitted.vocab, fitted.config.max_len
    x = np.stack([np.r_[np.zeros(max(0, length - len(s)), dtype=np.int64), vocab.indices(s)[-length:]]
                  for s in sequences])
    with torch.no_grad():
        return fitted.model(torch.from_numpy(x))[:, -1].numpy()


def test_the_folder_holds_onnx_numpy_and_json_only(exported):
    _, folder = exported
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted([C.ENCODER_FILE, C.CONFIG_FILE, C.PRODUCT_IDS_FILE, C.ITEM_VECTORS_FILE,
                            C.ITEM_CATEGORIES_FILE, C.ITEM_BANDS_FILE, C.CATEGORY_VECTORS_FILE, C.BAND_VECTORS_FILE])
    meta = json.loads((folder / C.CONFIG_FILE).read_text())
    assert meta["config"]["max_len"] == SMALL.max_len and meta["products"] == N_PRODUCTS
    assert not list(folder.parent.glob(".model-*"))  # the temporary folder is gone


def test_onnx_scores_equal_torch_scores(exported):
    fitted, folder = exported
    runtime = load_runtime(folder)
    sequences = probe_sequences(length=3) + probe_sequences(length=25, seed=3)  # shorter and longer than max_len
    states = torch_states(fitted, sequences)
    np.testing.assert_allclose(encode(runtime, sequences), states, atol=1e-5, rtol=0)
    with torch.no_grad():
        expected = states @ fitted.model.item_vectors().numpy().T
    np.testing.assert_allclose(score_products(runtime, sequences, fitted.vocab.product_ids), expected,
                               atol=1e-5, rtol=0)


def test_score_next_ranks_the_successor_first_and_honours_exclude(exported):
    runtime = load_runtime(exported[1])
    probes = probe_sequences()
    assert np.mean([score_next(runtime, s, 1)[0][0] == successor(s) for s in probes]) >= 0.9
    items, scores = score_next(runtime, probes[0], k=5, exclude=[successor(probes[0]), 999_999])
    assert len(items) == 5 and successor(probes[0]) not in items and np.all(np.diff(scores) <= 0)
    everything = [FIRST_ID + i for i in range(N_PRODUCTS)]
    assert len(score_next(runtime, probes[0], k=500)[0]) == N_PRODUCTS
    assert len(score_next(runtime, probes[0], k=5, exclude=everything[:-2])[0]) == 2
    assert len(score_next(runtime, probes[0], k=5, exclude=everything)[0]) == 0


def test_bad_input_is_a_clear_value_error(exported):
    runtime = load_runtime(exported[1])
    with pytest.raises(ValueError, match="empty sequence"):
        score_next(runtime, [], 5)
    with pytest.raises(ValueError, match=r"unknown to the model: \[424242\]"):
        score_next(runtime, [FIRST_ID, 424242], 5)
    with pytest.raises(ValueError, match="integers"):
        score_next(runtime, ["shoe"], 5)
    for k in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="k must be"):
            score_next(runtime, [FIRST_ID], k)
    with pytest.raises(ValueError, match="not an exported sequential model"):
        load_runtime(exported[1].parent)
    with pytest.raises(ValueError, match="already known"):
        add_products(runtime, [FIRST_ID], ["c0"], [1.5])


def test_an_added_product_is_scored_by_its_attributes_and_can_be_read(exported):
    runtime = add_products(load_runtime(exported[1]), [5000, 5001], ["c1", None], [2.5, None])
    vectors = runtime.item_vectors[-2:]
    c1 = runtime.meta["categories"].index("c1") + 1
    np.testing.assert_allclose(vectors[0], runtime.category_vectors[c1] + runtime.band_vectors[2], atol=1e-6)
    assert not vectors[1].any()  # no attribute: no vector
    items, _ = score_next(runtime, [FIRST_ID, 5000], k=N_PRODUCTS + 2)  # a new product inside a sequence
    assert 5000 in items and len(items) == N_PRODUCTS + 2


def test_the_scoring_module_never_imports_torch(exported):
    fitted, folder = exported
    probe = probe_sequences()[0]
    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None  # any `import torch` now raises ImportError
        from recsys.families.sequential.scoring import load_runtime, score_next
        items, scores = score_next(load_runtime({str(folder)!r}), {probe!r}, 3)
        print(int(items[0]))
        assert not any(name == "torch" or name.startswith("torch.") for name, m in sys.modules.items() if m)
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert int(run.stdout.split()[-1]) == score_next(load_runtime(folder), probe, 1)[0][0]


@pytest.mark.slow  # tens of seconds: not in make test-fast
def test_a_gru_exports_with_the_same_scores(tmp_path):
    config = dataclasses.replace(SMALL, kind="gru", max_epochs=2)
    fitted = fit_sequential(successor_events(users=50), products(), config)
    runtime = load_runtime(export_model(fitted, tmp_path / "gru"))
    sequences = probe_sequences(count=5)
    np.testing.assert_allclose(encode(runtime, sequences), torch_states(fitted, sequences), atol=1e-5, rtol=0)
