"""The teaching demos: self-attention by hand and positional encoding.

Each demo runs once in-process (its returned numbers are checked against
independent numpy computations) and once as a script, as a learner runs it.
"""
import contextlib
import importlib.util
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMOS = ROOT / "demos"
PNG = b"\x89PNG\r\n\x1a\n"
BY_HAND_PICTURES = ["attention_by_hand.png", "attention_two_heads.png"]
POSITION_PICTURES = ["positional_encoding.png", "position_similarity.png",
                     "sinusoidal_vs_learned.png", "position_waves.png"]


def load_demo(name):
    spec = importlib.util.spec_from_file_location(f"demo_{name}", DEMOS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_in_process(name, out):
    """main(["--out", out]) of demos/NAME.py; returns (result dict, printed text)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = load_demo(name).main(["--out", str(out)])
    return result, printed.getvalue()


def run_script(*args):
    return subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, encoding="utf-8", timeout=120)


def assert_pngs(folder, names):
    for name in names:
        data = (Path(folder) / name).read_bytes()
        assert data[:8] == PNG, name
        assert len(data) > 5000, f"{name}: only {len(data)} bytes"


def softmax(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def by_hand(tmp_path_factory):
    out = tmp_path_factory.mktemp("by_hand")
    result, printed = run_in_process("self_attention_by_hand", out)
    return result, printed, out


@pytest.fixture(scope="module")
def positions(tmp_path_factory):
    out = tmp_path_factory.mktemp("positions")
    result, printed = run_in_process("positional_encoding", out)
    return result, printed, out


@pytest.mark.parametrize("demo, pictures", [("by_hand", BY_HAND_PICTURES),
                                            ("positions", POSITION_PICTURES)])
def test_writes_its_pictures(demo, pictures, request):
    result, _, out = request.getfixturevalue(demo)
    assert sorted(Path(p).name for p in result["paths"]) == sorted(pictures)
    assert_pngs(out, pictures)


# ----- self-attention by hand ----------------------------------------------------

def test_by_hand_weights_are_rows_that_sum_to_one(by_hand):
    result, _, _ = by_hand
    for weights in (result["weights"], result["two_heads"]["weights"]):
        assert np.all(weights > 0)
        np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-12)


def test_by_hand_z_is_softmax_qkt_over_sqrt_dk_times_v(by_hand):
    result, _, _ = by_hand
    x = result["x"]
    q, k, v = x @ result["W_Q"], x @ result["W_K"], x @ result["W_V"]
    scores = q @ k.T
    weights = softmax(scores / np.sqrt(q.shape[1]))
    np.testing.assert_allclose(result["scores"], scores)
    np.testing.assert_allclose(result["scaled"], scores / np.sqrt(result["d_k"]))
    np.testing.assert_allclose(result["weights"], weights, atol=1e-12)
    for key in ("Z", "Z_matrix", "Z_engine"):
        np.testing.assert_allclose(result[key], weights @ v, atol=1e-12, err_msg=key)


def test_by_hand_two_heads_equal_an_independent_numpy_computation(by_hand):
    result, _, _ = by_hand
    x, two = result["x"], result["two_heads"]
    n_heads = len(two["heads"])
    d_head = x.shape[1] // n_heads
    z_heads, weights = [], []
    for h in range(n_heads):
        cols = slice(h * d_head, (h + 1) * d_head)
        q, k, v = x @ result["W_Q"][:, cols], x @ result["W_K"][:, cols], x @ result["W_V"][:, cols]
        weights.append(softmax(q @ k.T / np.sqrt(d_head)))
        z_heads.append(weights[-1] @ v)
        np.testing.assert_allclose(two["heads"][h]["Z"], z_heads[-1], atol=1e-12)
    concat = np.concatenate(z_heads, axis=1)
    assert concat.shape == (2, n_heads * d_head)
    np.testing.assert_allclose(two["concat"], concat, atol=1e-12)
    for key in ("Z", "Z_engine"):
        np.testing.assert_allclose(two[key], concat @ result["W_O"], atol=1e-12, err_msg=key)
    np.testing.assert_allclose(two["weights_engine"], np.stack(weights), atol=1e-12)


def test_by_hand_numbers_the_tour_quotes(by_hand):
    """The hand-picked weights give these numbers; the docs quote them."""
    result, _, _ = by_hand
    np.testing.assert_array_equal(result["scores"], [[4, 2], [4, 5]])
    np.testing.assert_allclose(result["weights"], [[0.731, 0.269], [0.378, 0.622]], atol=5e-4)
    np.testing.assert_allclose(result["Z"], [[1.269, 1.462, 0.269, 1.538],
                                             [1.622, 0.755, 0.622, 2.245]], atol=5e-4)
    heads = result["two_heads"]["weights"]
    assert np.all(heads[0].argmax(axis=1) == [0, 1])  # head 0 looks at the word itself
    assert np.all(heads[1].argmax(axis=1) == [1, 0])  # head 1 at the other word


def test_by_hand_prints_the_two_word_tables(by_hand):
    _, printed, _ = by_hand
    for line in ("Attention Weight", "Value Vector", "Weighted Value",
                 "Output_A = α_AA * V_A + α_AB * V_B", "Output_B = α_BA * V_A + α_BB * V_B",
                 "q1 . k2 = 2*0 + 1*1 + 0*1 + 1*1 = 2", "sqrt(d_k) = sqrt(4) = 2",
                 "Z = concat W^O", "same as Z: yes"):
        assert line in printed, line


# ----- positional encoding -------------------------------------------------------

def test_positions_d4_table(positions):
    result, printed, _ = positions
    np.testing.assert_allclose(result["pe_d4"][1], [0.8415, 0.5403, 0.0100, 1.0000], atol=1e-4)
    np.testing.assert_allclose(result["pe_d4"][0], [0, 1, 0, 1], atol=1e-12)
    assert "1       0.8415       0.5403       0.0100       1.0000" in printed


def test_positions_similarity_depends_on_distance_only(positions):
    result, _, _ = positions
    sim, pe = result["similarity"], result["pe"]
    np.testing.assert_allclose(sim, pe @ pe.T, atol=1e-9)
    for k in range(1, 10):
        diagonal = np.diagonal(sim, offset=k)
        np.testing.assert_allclose(diagonal, diagonal[0], atol=1e-4)
    for k, values in result["similarity_by_offset"].items():
        np.testing.assert_allclose(values, sim[0, k], atol=1e-4)
    np.testing.assert_allclose(np.diagonal(sim), pe.shape[1] / 2, atol=1e-4)


def test_positions_permutation_equivariance(positions):
    result, _, _ = positions
    diffs = result["equivariance"]
    assert diffs["without positions"] < 1e-5
    assert diffs["with sinusoidal positions"] > 1e-3
    assert not np.array_equal(result["permutation"], np.arange(len(result["permutation"])))


# ----- as scripts ----------------------------------------------------------------

@pytest.mark.parametrize("name", ["self_attention_by_hand", "positional_encoding"])
def test_help_lists_out(name):
    done = run_script(DEMOS / f"{name}.py", "--help")
    assert done.returncode == 0, done.stderr
    assert "--out" in done.stdout


@pytest.mark.parametrize("name, pictures", [("self_attention_by_hand", BY_HAND_PICTURES),
                                            ("positional_encoding", POSITION_PICTURES)])
def test_runs_as_a_script(name, pictures, tmp_path):
    done = run_script(DEMOS / f"{name}.py", "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    assert_pngs(tmp_path, pictures)
    for picture in pictures:
        assert f"wrote {tmp_path / picture}" in done.stdout
