"""Arrays on huge pages (engine.memory): the same zeros, the same training, other bytes.

Where the bytes live must change no number: a model and its optimizer on huge pages train
bit-identically to the same on np.zeros, and a resumed run (whose optimizer state is loaded
from a checkpoint) keeps its buffers on huge pages too.
"""

from pathlib import Path

import numpy as np
import pytest

from mlpcli.engine import MLP, memory, optimizers

HUGE = 2 << 20


def _thp_mode() -> str:
    try:
        text = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return "none"
    return text.split("[", 1)[1].split("]", 1)[0] if "[" in text else "none"


def _on_huge_boundary(a: np.ndarray) -> bool:
    return a.ctypes.data % HUGE == 0


def _one_block_from_a_huge_page(arrays: list[np.ndarray]) -> bool:
    """The arrays lie end to end, the first on a huge page's boundary: rows of one block."""
    start, size = arrays[0].ctypes.data, arrays[0].nbytes
    return _on_huge_boundary(arrays[0]) and all(
        a.ctypes.data == start + i * size and a.nbytes == size for i, a in enumerate(arrays)
    )


@pytest.mark.skipif(not memory.ENABLED, reason="no madvise(MADV_HUGEPAGE) on this OS")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_large_block_is_zeros_aligned_to_a_huge_page_and_writable(dtype):
    a = memory.zeros((3, 100_000), dtype)
    assert a.shape == (3, 100_000) and a.dtype == dtype
    assert a.flags.c_contiguous and a.flags.writeable
    assert _on_huge_boundary(a)
    assert not a.any()
    a[1] = 7  # the rows are independent arrays over one mapping
    assert a[0].sum() == 0 and a[1].sum() == 7 * 100_000 and a[2].sum() == 0


@pytest.mark.skipif(_thp_mode() not in ("always", "madvise"), reason="THP switched off here")
def test_linux_backs_a_large_block_with_huge_pages():
    a = memory.zeros((2, 400_000), np.float32)  # 3.2 MB: one huge page at least
    a[...] = 1.0  # touched: the kernel faults its pages in
    start = a.ctypes.data
    smaps = Path("/proc/self/smaps").read_text().split("\n")
    for i, line in enumerate(smaps):
        lo, _, rest = line.partition("-")
        if not rest or " " not in rest:
            continue
        try:
            begin, end = int(lo, 16), int(rest.split()[0], 16)
        except ValueError:
            continue
        if begin <= start < end:
            fields = dict(f.split(":", 1) for f in smaps[i + 1 : i + 25] if ":" in f)
            assert int(fields["AnonHugePages"].split()[0]) >= 2048
            return
    pytest.fail("the block's mapping is not in /proc/self/smaps")


def test_small_blocks_and_a_disabled_module_are_plain_numpy(monkeypatch):
    small = memory.zeros((2, 1000), np.float32)
    assert isinstance(small.base, np.ndarray) or small.base is None
    assert small.nbytes < memory.MIN_BYTES and not small.any()
    monkeypatch.setattr(memory, "ENABLED", False)
    plain = memory.zeros((2, 400_000), np.float32)
    assert plain.shape == (2, 400_000) and not plain.any()
    assert plain.base is None  # np.zeros' own allocation


def _train(steps: int, opt: optimizers.Optimizer, model: MLP) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, model.sizes[0])).astype(model.dtype)
    for _ in range(steps):
        out = model.forward(x)
        model.backward(out / len(x))  # any gradient will do: both runs see the same
        opt.step([model.flat])


def _model() -> MLP:
    model = MLP([300, 500, 5], ["relu"])  # 153,005 parameters: 612 kB a buffer
    assert model.flat.value.nbytes >= memory.MIN_BYTES
    model.init(np.random.default_rng(1))
    return model


@pytest.mark.skipif(not memory.ENABLED, reason="no madvise(MADV_HUGEPAGE) on this OS")
@pytest.mark.parametrize("name", sorted(optimizers.OPTIMIZERS))
def test_training_on_huge_pages_is_bit_identical_to_np_zeros(monkeypatch, name):
    huge_model, huge_opt = _model(), optimizers.OPTIMIZERS[name](1e-3)
    _train(3, huge_opt, huge_model)
    assert _one_block_from_a_huge_page([huge_model.flat.value, huge_model.flat.grad])
    buffers = list(huge_opt.state.get("params", {}).values())
    assert len(buffers) == len(huge_opt.buffers)
    assert not buffers or _one_block_from_a_huge_page(buffers)
    monkeypatch.setattr(memory, "ENABLED", False)
    plain_model, plain_opt = _model(), optimizers.OPTIMIZERS[name](1e-3)
    _train(3, plain_opt, plain_model)
    np.testing.assert_array_equal(huge_model.flat.value, plain_model.flat.value)
    for key, value in plain_opt.state_dict().items():
        np.testing.assert_array_equal(huge_opt.state_dict()[key], value)


@pytest.mark.skipif(not memory.ENABLED, reason="no madvise(MADV_HUGEPAGE) on this OS")
def test_loaded_optimizer_state_is_copied_into_one_huge_page_block():
    model, opt = _model(), optimizers.Adam(1e-3)
    _train(2, opt, model)
    saved = {k: np.array(v) for k, v in opt.state_dict().items()}
    again = optimizers.Adam(1e-3)
    again.load_state_dict(saved)
    m, v = again.state["params"]["exp_avg"], again.state["params"]["exp_avg_sq"]
    assert _one_block_from_a_huge_page([m, v]) and m.flags.c_contiguous
    np.testing.assert_array_equal(m, saved["params.exp_avg"])
    np.testing.assert_array_equal(v, saved["params.exp_avg_sq"])
    m[0] += 1.0  # a copy: the checkpoint's arrays are not the optimizer's
    assert m[0] != saved["params.exp_avg"][0]


def test_loaded_buffers_of_other_shapes_are_copied_one_by_one():
    opt = optimizers.Adam(1e-3)
    state = {"t": np.asarray(1), "w.exp_avg": np.ones(3), "w.exp_avg_sq": np.ones((2, 2))}
    opt.load_state_dict(state)
    assert opt.state["w"]["exp_avg"].shape == (3,)
    assert opt.state["w"]["exp_avg_sq"].shape == (2, 2)
