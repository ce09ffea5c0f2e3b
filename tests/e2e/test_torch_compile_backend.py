"""torch.compile(model, backend="mipsc"): found through the torch_dynamo_backends entry point,
graphs compiled through mipsc (matmuls counted in the kernel), graph breaks and unsupported
ops running in torch, recompiles cached."""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip(
    "torch", reason="torch.compile's backend needs the mipsc[torch] extra (torch, iree-turbine)"
)
pytest.importorskip(
    "iree.turbine.aot", reason="torch.compile's backend needs iree-turbine (mipsc[torch] extra)"
)

import mipsc.compiled  # noqa: E402
from mipsc.dynamo import MipscFallbackWarning  # noqa: E402

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.fixture
def iree_compiles(monkeypatch):
    """How many times mipsc ran its pipeline and iree-compile."""
    calls = []
    real = mipsc.compiled.compile_module

    def counting(*args, **kwargs):
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(mipsc.compiled, "compile_module", counting)
    return calls


def mlp(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(8, 24), torch.nn.ReLU(), torch.nn.Linear(24, 4)
    ).eval()


def test_the_backend_is_registered_by_entry_point():
    from torch._dynamo import list_backends

    assert "mipsc" in list_backends(exclude_tags=())


def test_mlp_runs_in_the_kernel_and_recompiles_are_cached(kernel_calls, iree_compiles):
    model = mlp(0)
    compiled = torch.compile(model, backend="mipsc")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error", MipscFallbackWarning)  # nothing may fall back
        for batch in (4, 5, 4, 5, 9):
            x = torch.randn(batch, 8)
            before = kernel_calls["mips_matmul_f32"]
            got = compiled(x)
            assert kernel_calls["mips_matmul_f32"] == before + 2
            torch.testing.assert_close(got, model(x), rtol=1e-5, atol=1e-5)
    # Batch 4 compiles a static graph; TorchDynamo then makes the batch dynamic, and that
    # graph compiles once for 5 and 9: repeats are cached.
    assert len(iree_compiles) == 2
    # Another model of the same architecture exports the same graph (its weights are graph
    # inputs): no new iree-compile, and its own weights are used.
    other = mlp(1)
    again = torch.compile(other, backend="mipsc")
    with torch.no_grad():
        x = torch.randn(4, 8)
        torch.testing.assert_close(again(x), other(x), rtol=1e-5, atol=1e-5)
    assert len(iree_compiles) == 2


def test_dynamic_sizes_compile_once_with_int_inputs(kernel_calls, iree_compiles):
    """A graph whose int inputs are symbolic sizes (a reshape by x's own batch and length):
    once dynamic, new sizes run without a new iree-compile, and size 1 still runs."""

    def f(x, w):
        b, s, _ = x.shape
        return (x.reshape(b * s, -1) @ w).reshape(b, s, -1)

    compiled = torch.compile(f, backend="mipsc")
    w = torch.randn(6, 3)
    shapes = [(2, 3), (3, 4), (4, 7), (5, 2), (1, 3)]
    with torch.no_grad():
        for b, s in shapes:
            x = torch.randn(b, s, 6)
            before = kernel_calls["mips_matmul_f32"]
            torch.testing.assert_close(compiled(x, w), f(x, w), rtol=1e-5, atol=1e-5)
            assert kernel_calls["mips_matmul_f32"] == before + 1
    assert len(iree_compiles) <= 3, iree_compiles  # static, dynamic, and batch 1's own


def test_dynamic_true_compiles_once(kernel_calls, iree_compiles):
    """torch.compile(dynamic=True) makes every size a SymInt, the fixed ones as numbers (the
    hidden size 6 here): those are not dynamic dims, and the graph still compiles once."""
    model = torch.nn.Linear(6, 3).eval()
    compiled = torch.compile(model, backend="mipsc", dynamic=True)
    with torch.no_grad():
        for t in (2, 3, 5, 8):
            x = torch.randn(2, t, 6)
            before = kernel_calls["mips_matmul_f32"]
            torch.testing.assert_close(compiled(x), model(x), rtol=1e-5, atol=1e-5)
            assert kernel_calls["mips_matmul_f32"] > before
    assert len(iree_compiles) == 1, iree_compiles


def test_torch_compile_options_reach_mipsc(kernel_calls, monkeypatch):
    """torch.compile(..., options={...}) hands its options to the backend, which ignored them
    (a user's `workers` or `kernel_backend` silently had no effect): they are CompileOptions'
    fields, used for each graph, and an unknown one is an error naming it."""
    seen = []
    real = mipsc.compiled.compile_module

    def recording(text, filename, output, options, **kwargs):
        seen.append(options)
        return real(text, filename, output, options, **kwargs)

    monkeypatch.setattr(mipsc.compiled, "compile_module", recording)
    model = torch.nn.Linear(8, 4).eval()
    compiled = torch.compile(model, backend="mipsc", options={"workers": 1, "iree_flags": []})
    x = torch.randn(3, 8)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error", MipscFallbackWarning)
        before = kernel_calls["mips_matmul_f32"]
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-5, atol=1e-5)
        assert kernel_calls["mips_matmul_f32"] == before + 1
    assert [o.workers for o in seen] == [1], seen
    torch._dynamo.reset()
    wrong = torch.compile(model, backend="mipsc", options={"triton.cudagraphs": True})
    with torch.no_grad(), pytest.raises(Exception, match=r"unknown compile option\(s\) triton"):
        wrong(x)


def test_graph_breaks_run_between_compiled_graphs(kernel_calls):
    def f(a, b):
        h = torch.relu(a @ b)
        print("a graph break")  # TorchDynamo runs this in Python, between two graphs
        return torch.tanh(h @ b.T)

    compiled = torch.compile(f, backend="mipsc")
    a, b = torch.randn(5, 6), torch.randn(6, 7)
    before = kernel_calls["mips_matmul_f32"]
    with torch.no_grad():
        got = compiled(a, b)
    assert kernel_calls["mips_matmul_f32"] == before + 2
    torch.testing.assert_close(got, f(a, b), rtol=1e-5, atol=1e-5)


def test_unsupported_op_falls_back_to_torch_with_a_warning():
    def f(x):
        return torch.median(x @ x, dim=1).values  # IREE's torch frontend lacks median.dim

    compiled = torch.compile(f, backend="mipsc")
    x = torch.randn(4, 4)
    with torch.no_grad(), pytest.warns(MipscFallbackWarning, match=r"median\.dim"):
        got = compiled(x)
    torch.testing.assert_close(got, f(x))


def test_autograd_runs_in_torch_with_a_warning():
    model = mlp(2)
    compiled = torch.compile(model, backend="mipsc")
    x = torch.randn(3, 8)
    with pytest.warns(MipscFallbackWarning, match=r"torch\.no_grad\(\)"):
        got = compiled(x)
    got.sum().backward()  # still differentiable: torch ran it
    assert model[0].weight.grad is not None


def test_a_derived_size_reshape_compiles_per_shape_with_a_log_line(
    kernel_calls, iree_compiles, caplog
):
    """`x.view(b, t // 2, 2 * c)` with t dynamic: torch.export cannot prove the view for every
    t, so the dynamic compile fails; the graph then compiles per shape (in the kernel, not in
    torch), says why once, and a repeated shape is not compiled again."""

    class PairUp(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = torch.nn.Linear(16, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, t, c = x.shape
            return self.proj(x.view(b, t // 2, 2 * c))

    torch.manual_seed(3)
    model = PairUp().eval()
    compiled = torch.compile(model, backend="mipsc")
    with torch.no_grad(), warnings.catch_warnings(), caplog.at_level("WARNING", "mipsc.dynamo"):
        warnings.simplefilter("error", MipscFallbackWarning)  # nothing may run in torch
        for t in (4, 6, 6, 4):
            x = torch.randn(2, t, 8)
            before = kernel_calls["mips_matmul_f32"]
            torch.testing.assert_close(compiled(x), model(x), rtol=1e-5, atol=1e-5)
            assert kernel_calls["mips_matmul_f32"] == before + 1
    said = [r.getMessage() for r in caplog.records if r.name == "mipsc.dynamo"]
    assert len(said) == 1, said
    # Which input and dim, and what it needs, in plain words (it said only "UserError:
    # Constraints violated (s27)! For more information, run with TORCH_LOGS=...").
    assert said[0] == (
        "mipsc: a graph with dynamic sizes compiles once per shape instead: dim 1 of x cannot "
        "be dynamic: the graph needs it to be a multiple of 2: no action needed "
        "(torch.compile(..., dynamic=False) skips this try)"
    )
    assert len(iree_compiles) == 2, iree_compiles  # t=4 and t=6, each once


def test_a_size_as_a_float_compiles_per_shape_saying_what_iree_turbine_lacks(
    kernel_calls, caplog
):
    """`/ x.shape[-1] ** 0.5` with the dim dynamic is a symbolic float (sym_float), which
    iree-turbine cannot import: the log line said only that it "could not import the program
    torch.export traced of CapturedGraph" (mipsc's wrapper); it now gives iree-turbine's
    reason, and the graph runs per shape in the kernel with the right values."""

    def f(x, y):
        return (x @ y) / x.shape[-1] ** 0.5

    compiled = torch.compile(f, backend="mipsc")
    with torch.no_grad(), warnings.catch_warnings(), caplog.at_level("WARNING", "mipsc.dynamo"):
        warnings.simplefilter("error", MipscFallbackWarning)  # nothing may run in torch
        for k in (8, 9, 10):
            x, y = torch.randn(4, k), torch.randn(k, 5)
            before = kernel_calls["mips_matmul_f32"]
            torch.testing.assert_close(compiled(x, y), f(x, y), rtol=1e-5, atol=1e-5)
            assert kernel_calls["mips_matmul_f32"] == before + 1
    said = [r.getMessage() for r in caplog.records if r.name == "mipsc.dynamo"]
    assert len(said) == 1, said
    assert said[0].startswith(
        "mipsc: a graph with dynamic sizes compiles once per shape instead: iree-turbine could "
        "not import it for every size: NotImplementedError: "
    ), said
    assert "sym_float" in said[0] and "CapturedGraph" not in said[0], said
    assert "stack_trace" not in said[0], said


def test_a_graph_failing_both_dynamic_and_per_shape_says_so_in_one_warning(caplog):
    """The dynamic compile fails (a derived view) and so does the per-shape one (median.dim,
    which IREE's torch frontend lacks): the graph runs in torch, said once, by the fallback
    warning alone."""

    def f(x):
        b, t, c = x.shape
        return torch.median(x.view(b, t // 2, 2 * c) * 2, dim=1).values

    compiled = torch.compile(f, backend="mipsc", dynamic=True)
    with torch.no_grad(), caplog.at_level("WARNING", "mipsc.dynamo"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for t in (4, 6):
                x = torch.randn(2, t, 8)
                torch.testing.assert_close(compiled(x), f(x))
    fallbacks = [str(w.message) for w in caught if w.category is MipscFallbackWarning]
    assert len(fallbacks) == 1 and "median.dim" in fallbacks[0], fallbacks
    assert "SizesFromShapes" not in fallbacks[0]
    assert [r for r in caplog.records if r.name == "mipsc.dynamo"] == []


class KVCache(torch.nn.Module):
    """A KV-cache write into a buffer (`cache[:, :, pos] = k`), then attention-like products."""

    def __init__(self) -> None:
        super().__init__()
        self.k_proj = torch.nn.Linear(8, 8)
        self.register_buffer("cache", torch.zeros(1, 2, 6, 8))

    def forward(self, x: torch.Tensor, pos: int) -> torch.Tensor:
        self.cache[:, :, pos] = self.k_proj(x)
        return x.unsqueeze(2) @ self.cache.transpose(-1, -2)


def test_a_kv_cache_write_runs_in_the_kernel_and_updates_the_buffer(kernel_calls):
    torch.manual_seed(4)
    model, reference = KVCache().eval(), KVCache().eval()
    reference.load_state_dict(model.state_dict())
    compiled = torch.compile(model, backend="mipsc")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error", MipscFallbackWarning)  # nothing may run in torch
        for pos in (0, 1):
            x = torch.randn(1, 2, 8)
            before = kernel_calls["mips_matmul_f32"]
            got = compiled(x, pos)
            assert kernel_calls["mips_matmul_f32"] >= before + 1
            torch.testing.assert_close(got, reference(x, pos), rtol=1e-5, atol=1e-5)
            # The buffer torch passed to the graph got the write, as in eager.
            torch.testing.assert_close(model.cache, reference.cache, rtol=1e-5, atol=1e-5)
    assert model.cache[:, :, 1].abs().sum() > 0


def test_first_calls_from_several_threads_at_once(iree_compiles):
    """Non-strict torch.export patches Module.__call__ for the whole process: a compiled model
    first called from several threads at once raised ("Detected that you are using FX to
    symbolically trace a dynamo-optimized function", KeyError 'custom', "is not tracked with
    proxy"), about one run in two. mipsc's exports now hold TorchDynamo's compile lock."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    model = mlp(2)
    compiled = torch.compile(model, backend="mipsc")
    batches = (2, 3, 4, 5)
    start = threading.Barrier(len(batches))
    inputs = [torch.randn(batch, 8) for batch in batches]

    def first_call(x: torch.Tensor) -> torch.Tensor:
        start.wait()
        with torch.no_grad():
            return compiled(x)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MipscFallbackWarning)
        with ThreadPoolExecutor(len(batches)) as pool:
            results = list(pool.map(first_call, inputs))
    assert not [w for w in caught if issubclass(w.category, MipscFallbackWarning)]
    assert iree_compiles  # compiled through mipsc, not run in torch
    with torch.no_grad():
        for x, got in zip(inputs, results, strict=True):
            torch.testing.assert_close(got, model(x), rtol=1e-5, atol=1e-5)
