"""The process's IREE device and how its caller waits (mipsc.runtime.set_threads,
mipsc.runtime.waiting): one thread runs local-sync, whose caller runs every dispatch and
starts no worker; on local-task the caller of a function whose last call took a millisecond
or more waits as a SCHED_BATCH thread, and gets its own policy back after the call.

The device is made once per process, so the tests that make one run in a process of their own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from mipsc.diagnostics import MipscError
from mipsc.kernel_abi import EMBEDDED_WORKSPACE_MAX_BYTES
from mipsc.runtime import plugin, waiting

T = TypeVar("T")

linux_policies = pytest.mark.skipif(
    not hasattr(os, "SCHED_BATCH"), reason="SCHED_BATCH is a Linux scheduling policy"
)


def in_thread(body: Callable[[], T]) -> T:
    """body() on a thread of its own (a policy or nice value set there dies with it)."""
    out: list[T] = []
    thread = threading.Thread(target=lambda: out.append(body()))
    thread.start()
    thread.join()
    return out[0]


@linux_policies
def test_batch_wait_switches_the_caller_and_gives_back_its_policy_and_nice() -> None:
    def body() -> tuple:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + 1)
        nice = os.getpriority(os.PRIO_PROCESS, tid)
        with waiting.batch_wait():
            inside = os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, tid)
        return nice, inside, (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, tid))

    nice, inside, after = in_thread(body)
    assert inside == (os.SCHED_BATCH, nice)
    assert after == (os.SCHED_OTHER, nice)


@linux_policies
def test_batch_wait_restores_the_policy_when_the_call_fails() -> None:
    def body() -> int:
        with pytest.raises(RuntimeError), waiting.batch_wait():
            raise RuntimeError("the call failed")
        return os.sched_getscheduler(0)

    assert in_thread(body) == os.SCHED_OTHER


@linux_policies
def test_batch_wait_leaves_another_policy_alone() -> None:
    def body() -> tuple[int, int]:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # (cannot be undone)
        with waiting.batch_wait():
            inside = os.sched_getscheduler(0)
        return inside, os.sched_getscheduler(0)

    assert in_thread(body) == (os.SCHED_IDLE, os.SCHED_IDLE)


def test_thread_count_below_one_is_refused() -> None:
    with pytest.raises(MipscError, match="at least 1 and at most 256, not 0"):
        plugin.set_threads(0)


@pytest.mark.parametrize("count", ["2", None, 2.5, True, 2.0])
def test_thread_count_must_be_an_int(count: object) -> None:
    """The string "2" and None raised a bare TypeError, 2.5 ran 2 workers and True 1."""
    with pytest.raises(
        MipscError, match=r"takes a whole number of threads \(an int from 1 to 256\)"
    ):
        plugin.set_threads(count)  # type: ignore[arg-type]


def test_thread_count_above_the_cap_is_refused() -> None:
    """10**9 started 256 workers; the cap is `mipsc bench --threads`'s."""
    assert plugin.MAX_THREADS == 256  # (mipsc.options.MAX_THREADS)
    with pytest.raises(MipscError, match=f"at most 256, not {10**9}"):
        plugin.set_threads(10**9)


def run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


CALL_MM = """
    import os, threading
    import numpy as np
    from mipsc import runtime
    from mipsc.diagnostics import MipscError

    def workers() -> int:  # IREE names its task workers iree-worker-N
        tasks = os.listdir("/proc/self/task")
        return sum(open(f"/proc/self/task/{{t}}/comm").read().startswith("iree-worker") for t in tasks)

    rng = np.random.default_rng(0)
    a = rng.standard_normal((37, 19)).astype(np.float32)
    b = rng.standard_normal((19, 23)).astype(np.float32)
    before = workers()
    module = runtime.load({vmfb!r})
    got = module.main(a, b)
    np.testing.assert_allclose(got, a @ b, rtol=1e-5, atol=1e-5)
    print(runtime.device_name(), module.waits_for_workers, workers() - before)
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")
def test_one_thread_runs_local_sync_without_workers(mm_vmfb: Path) -> None:
    code = "from mipsc import runtime\nruntime.set_threads(1)\n" + textwrap.dedent(
        CALL_MM.format(vmfb=str(mm_vmfb))
    )
    code += textwrap.dedent("""
        try:
            runtime.set_threads(2)
        except MipscError as err:
            print("refused:", err)
    """)
    lines = run_python(code).splitlines()
    assert lines[0] == "local-sync False 0"
    assert lines[1] == (
        "refused: this process already created its IREE device (local-sync, 1 thread), and IREE "
        "cannot change its thread count to 2: call mipsc.set_threads before the first module is "
        "loaded or compiled (mipsc.compile loads one), or start a new process"
    )


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")
def test_the_count_a_default_load_runs_is_no_change(mm_vmfb: Path) -> None:
    """After a load without set_threads, set_threads of the threads the device already runs
    (one per core: 2 workers on a 2-core machine, local-sync's 1 on one CPU) raised; it is
    no change. Another count is refused, naming the function to call earlier."""
    code = textwrap.dedent(CALL_MM.format(vmfb=str(mm_vmfb)))
    code += textwrap.dedent("""
        running = workers() or 1
        runtime.set_threads(running)
        try:
            runtime.set_threads(running + 1)
        except MipscError as err:
            print("refused:", err)
    """)
    lines = run_python(code).splitlines()
    assert len(lines) == 2, lines
    expected = "call mipsc.set_threads before the first module is loaded or compiled"
    assert f"{expected} (mipsc.compile loads one)" in lines[1], lines[1]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity (Linux)")
def test_a_process_on_one_cpu_runs_local_sync(mm_vmfb: Path) -> None:
    code = "import os\nos.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
    code += textwrap.dedent(CALL_MM.format(vmfb=str(mm_vmfb)))
    assert run_python(code).split()[:2] == ["local-sync", "False"]


@linux_policies
def test_local_task_caller_of_a_long_call_waits_as_batch_and_gets_its_policy_back(
    mm_vmfb: Path,
) -> None:
    code = "from mipsc import runtime\nruntime.set_threads(2)\n" + textwrap.dedent(
        CALL_MM.format(vmfb=str(mm_vmfb))
    )
    # A stand-in call: after one of 0.5 ms the next waits as it is, after one of 2 ms (slept,
    # so never shorter) as SCHED_BATCH (BATCH_MIN_SECONDS is 1 ms).
    code += textwrap.dedent("""
        import time
        from mipsc.runtime.waiting import BATCH_MIN_SECONDS
        assert BATCH_MIN_SECONDS == 1e-3
        seen = []
        def invoke(*args):
            seen.append(os.sched_getscheduler(0))
            if len(seen) == 1:
                time.sleep(2e-3)
        function = module.function("main")
        function._invoke = invoke
        module.call_seconds["main"] = 0.5e-3
        function(a, b)  # sleeps 2 ms
        function(a, b)
        module.call_seconds["main"] = 0.5e-3
        function(a, b)
        names = {os.SCHED_OTHER: "other", os.SCHED_BATCH: "batch"}
        print(*(names.get(p, p) for p in seen), names[os.sched_getscheduler(0)])
    """)
    lines = run_python(code).splitlines()
    name, waits, started = lines[0].split()
    assert (name, waits) == ("local-task", "True")
    assert int(started) == 2
    assert lines[1] == "other batch other other"


def test_a_module_for_a_larger_l2_runs_on_two_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module compiled for Zen 4 lends its embedded kernels 1 MiB of workgroup-local memory
    (its L2). IREE's local-task workers have their own CPU's L2 of it by default, 512 KiB on a
    Zen 3, where such a call failed ("dispatch requires 1048576b of local memory but only
    524288b is available per-worker"); mipsc's runtime gives its workers at least 1 MiB. (The
    module is compiled for this CPU, with Zen 4's workspace: Zen 4 code would not run here.)"""
    from mipsc.options import CompileOptions
    from mipsc.pipeline import compile_module
    from mipsc.transforms import lower_mips_to_call

    monkeypatch.setattr(
        lower_mips_to_call, "embedded_workspace_bytes", lambda cpu: EMBEDDED_WORKSPACE_MAX_BYTES
    )
    source = Path(__file__).parents[1] / "data" / "mm_static.mlir"
    vmfb = tmp_path / "mm_1mib.vmfb"
    compile_module(source.read_text(), source.name, vmfb, CompileOptions(kernel_link="embedded"))
    code = "from mipsc import runtime\nruntime.set_threads(2)\n" + textwrap.dedent(
        CALL_MM.format(vmfb=str(vmfb))
    )
    assert run_python(code).split()[0] == "local-task"


def test_workers_get_at_least_the_largest_workspace() -> None:
    assert plugin.worker_local_memory() >= EMBEDDED_WORKSPACE_MAX_BYTES
