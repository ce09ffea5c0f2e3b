"""Tile policy: which output tile each workgroup of a kernel dispatch computes.

The lowering (mechanism) asks `choose_tiles` for a product's shape; the cost model lives here,
apart from the IR it shapes. Its constants are per CPU kind: they come from the kernel
configuration entry of the compile's target CPU (kernels/mips_config.c, the `tile_*` fields,
read through `tile_model`), the same entry whose blocks the kernels run with, so that one
table says both how a CPU's kernels block and which tiles they get. The module constants
below are the fallback (`DEFAULT_TILE_MODEL`, the zen4 entry's values, with their sources)
for a compile that cannot read the table.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass

from xdsl.dialects.builtin import DYNAMIC_INDEX

from mipsc.kernel_config import HOST, TargetConfig, forget_configs, read_config

MAX_TILE = (516, 256)
"""The largest tile. Each workgroup packs its own panels of A and B, so A is packed once per
column of tiles and B once per row of tiles: big tiles re-pack less. But the kernel sweeps
its whole C tile once per block of K while holding a K-block x columns panel of B, so wide
tiles overflow L2 when two cores run (2048³ f32, 2 threads: 348x512 tiles 0.83x, 516x256
1.08x the speed of 256x256; 1 thread: 1.08x both; interleaved A/B through IREE)."""
MAX_PACKED_TILE_COLS = 1024
"""The widest tile of a thin product (WIDE_PACKED_ROWS) whose B is packed once at load
(pack-weights): such a tile packs no B panel, and its kernel reads the packed B a sliver
(KC x NR) at a time where it lies, once per block of A rows; with the tile's rows in one or two
A blocks, width costs no L2 room, and wider tiles pack A, once per tile, fewer times. Measured
on the project's Zen 4 (`mips_matmul_packed_<t>` alone on IREE's tiles, one thread,
interleaved, medians of per-call thread CPU time): 72x1024 tiles 1.03-1.04x the speed of 72x256
at 64x{4096x1024, 1024x4096} f32 and 1.03-1.10x bf16; 132x1024 1.01-1.04x the speed of 132x256
at 128x{3072x768, 2048x5632} f32 and 1.01-1.07x bf16; 72x512 and 132x768 in between. Through
IREE (the MLP and the encoder layer, one worker, process CPU time) with packed_kc: 0.92-0.97x
the time."""
WIDE_PACKED_ROWS = (17, 132)
"""Rows of C (static M) whose products with a packed B get tiles up to MAX_PACKED_TILE_COLS:
prefill and batch-sized products. Fewer rows keep the few-row paths' tiles; more rows have
several A blocks per tile, each sweeping the tile's B panel, which then should stay in L2."""
MIN_TILE = (24, 32)
TILE_ALIGN = (12, 32)
"""Tile rows are a multiple of every kernel's register tile height (AVX-512 12, AVX2 6, SSE 4)
and columns of every width (32, 16, 8): no tile but the last has a partial register tile."""
DYNAMIC_TILE = (72, 128)
MAX_WORKERS = 8
IREE_TILES_PER_RESERVATION = 1
"""How many workgroups an IREE worker claims at once when a dispatch has at least this many
per worker (fewer are handed out one by one). IREE 3.13's local-task driver runs command
buffers through its block processor (runtime/src/iree/hal/drivers/local_task: the recorder
sets tiles_per_reservation = 1 on every dispatch, each worker claims one tile per atomic
step); the older task system's shards reserved 8 at a time, which this runtime no longer
builds. Measured on the project's Zen 4 (2 threads, IREE host-execution profiling,
tools/profile_dispatches.py): a 24-workgroup dispatch kept up to 1.95 cores busy (25 of
150 calls above 1.5), which reservations of 8 (16 + 8) would cap at 1.5."""

# The cost model of choose_tiles, in flops (of the AVX-512 f32 kernel, measured through IREE
# on the Intel Xeon of BENCHMARKS.md; the zen4 entry carries them over: mips_config.c).
PACK_FLOPS = 64
"""What packing one element of A or B costs, in flops of the microkernel: a packed B sliver
of the first row of tiles costs 1.7-8.6x a plain microkernel call (tools/profile_kernel.py)."""
NARROW_COLS = 32
"""Tiles of C columns run at C / (C + NARROW_COLS) of the kernel's speed: fewer B slivers per
A sliver (128x2304x768 f32: 132x256 tiles 1.14-1.17x the speed of 132x192 ones)."""
WORKGROUP_FLOPS = 1_000_000
"""What a workgroup costs besides its work (dispatch, the kernel's allocation: ~7 us)."""
WAKE_FLOPS = 3_000_000
"""What sharing a dispatch with other workers costs once (waking them: ~20 us): small
products stay in one workgroup (64³ f32 is 0.5 MFLOP)."""
ONE_WORKER_WEIGHT = 0.5
"""How much the time on one worker counts beside the time on all of them. The constants were
fitted to nine shapes measured through IREE on 1 and 2 threads (BENCHMARKS.md): the choice
was the fastest measured, or within noise of it, for eight."""


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _even_tile(size: int, parts: int, align: int) -> int:
    """The aligned tile that covers `size` in about `parts` equal pieces."""
    return _round_up(-(-size // parts), align)


def _tile_options(size: int, align: int, smallest: int, largest: int) -> list[tuple[int, int]]:
    """(tile, tiles) for each way of cutting `size` into equal aligned tiles within bounds."""
    options: dict[int, int] = {}
    for parts in range(1, size + 1):
        tile = _even_tile(size, parts, align)
        if parts > 1 and tile < smallest:
            break
        if tile <= max(largest, align):
            options.setdefault(tile, -(-size // tile))
    return sorted(options.items(), key=lambda item: item[1])


def _busiest_worker(tiles: int, workers: int) -> int:
    """Tiles the busiest of `workers` IREE workers runs: one at a time below
    IREE_TILES_PER_RESERVATION per worker, else batches of that many (1 on IREE 3.13: the
    tiles spread evenly)."""
    batch = IREE_TILES_PER_RESERVATION
    if tiles < batch * workers:
        return -(-tiles // workers)
    reservations = -(-tiles // batch)
    return min(tiles, -(-reservations // workers) * batch)


def default_workers() -> int:
    """The cores of the machine compiling, which mipsc compile targets by default (host)."""
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


THIN_ROWS = 4
"""Products with at most this many rows of C (static M, no batch: a decode step's M = 1) are
bound by reading B once, and the kernels stream it (mips_kernels.h, thin_streams): their tiles
are chosen for that (choose_thin_tiles), not by the GEMM cost model below."""
THIN_COLUMN_ALIGN = 128
"""Thin tile widths are multiples of this: 32-column panels (the packed layout's) times the
most stripes a kernel configuration reads at once (thin_streams, 4 on every entry of
kernels/mips_config.c), so that each stripe gets whole panels."""
THIN_TILE_BYTES = 2 << 20
"""The fewest bytes of B a thin tile reads, where B allows: each tile starts its streams cold
(page walks, prefetchers). Measured on AMD EPYC Zen 4 (2 vCPUs, loaded), the Llama decode
step (hidden 2048, MLP 5632) through IREE, interleaved, process CPU time: bf16 tiles of 512
and 1024 columns (2-4 MiB) took 0.90-0.92x the time of 256 (1 MiB) on one thread; f32 tiles
of 128 to 1024 columns (1-8 MiB) were within noise of each other."""


PREPACK_F32_MIN_ROWS = 1
"""The fewest rows of C (static M) for which pack-weights packs a constant f32 B at load (bf16
always, and f32 with a dynamic M); per CPU, the configuration's `prepack_f32_min_rows`. Measured
on the project's machine (AMD EPYC Zen 4, 2 vCPUs, loaded by other jobs): products of 16 rows
and more gain whatever the pages (mips_matmul_<t> vs mips_matmul_packed_<t> on IREE's tiles:
0.22-0.38x the time at 16x4096x1024, 0.62-0.92x at 64 and 128 rows; through IREE the MLP at
batch 16 and 64 0.13-0.79x). One to four rows (a decode step) stream B: the unpacked weight is
read where it lies (the parameter file's page cache), the packed copy is anonymous memory,
which reads fastest on huge pages. Those it gets from the plugin's pack, and in a module with
the embedded kernels from mipsc's runtime (mipsc.runtime.huge_pages) after the load.
tools/bench_vmfb_ab.py on tools/bench_models.py's llama_decode f32 (process CPU time, 1 and 2
threads, load 5, 2026-12-01): packed on huge pages 0.85-0.87x the time of unpacked (embedded
link and mipsc's runtime, as the plugin link), packed on 4 KiB pages (the same .vmfb run
without mipsc's runtime) 0.94-0.96x. What packing costs besides is memory (one more buffer of
the packed size; the parameter file's pages stay in the page cache) and load time (one pass
over B, and on the embedded link the collapse into huge pages: 0.1-0.2 s of CPU for 176 MB)."""


@dataclass(frozen=True)
class TileModel:
    """The per-CPU constants of the tile cost model (the module constants of the same names
    say what each is): one kernel configuration entry's `tile_*` fields (mips_kernels.h,
    "Tile cost model") and its thin_streams. Hashable: `choose_tiles` caches by it."""

    config: str
    """The configuration entry the constants come from (`zen4`, ...), or `default`."""
    max_tile: tuple[int, int]
    max_packed_tile_cols: int
    pack_flops: int
    narrow_cols: int
    workgroup_flops: int
    wake_flops: int
    one_worker_weight: float
    thin_tile_bytes: int
    thin_column_align: int
    prepack_f32_min_rows: int
    """Not a tile, but the same per-CPU lowering choice: see PREPACK_F32_MIN_ROWS."""
    reason: str = ""
    """Why these constants (which target, which entry, or why the fallback), for `-v`."""


DEFAULT_TILE_MODEL = TileModel(
    "default", MAX_TILE, MAX_PACKED_TILE_COLS, PACK_FLOPS, NARROW_COLS, WORKGROUP_FLOPS,
    WAKE_FLOPS, ONE_WORKER_WEIGHT, THIN_TILE_BYTES, THIN_COLUMN_ALIGN, PREPACK_F32_MIN_ROWS,
)  # fmt: skip
"""The constants of a compile that cannot read the configuration table (no kernel plugin, one
built for another kernel ABI, or a target CPU the table has no entry for): the zen4 entry's
values, copied from kernels/mips_config.c so that such a compile on the project's Zen 4 picks
the tiles the plugin would (a test checks they agree)."""

TILE_CONFIG_KEYS = (
    "tile_max_rows", "tile_max_cols", "tile_packed_max_cols", "tile_pack_flops",
    "tile_narrow_cols", "tile_workgroup_flops", "tile_wake_flops", "tile_one_worker_pct",
    "tile_thin_bytes", "thin_streams", "prepack_f32_min_rows",
)  # fmt: skip
"""The configuration fields the cost model reads (tools/tune_kernels.py recompiles per value of
these)."""


def tile_model(target_cpu: str = HOST) -> TileModel:
    """The cost model for compiling for `target_cpu` (`host`, or an LLVM CPU name such as
    `znver4`): its configuration entry's constants (mipsc.kernel_config says which entry a
    name gets), else DEFAULT_TILE_MODEL with the reason in `reason`. Cached (a ctypes read of
    the plugin the first time); `forget_tile_models` clears it."""
    found = read_config(target_cpu, TILE_CONFIG_KEYS)
    if isinstance(found, str):
        return _fallback_model(found)
    return _model_of(found)


@functools.cache
def _fallback_model(why: str) -> TileModel:
    return _with_reason(DEFAULT_TILE_MODEL, why)


@functools.cache
def _model_of(entry: TargetConfig) -> TileModel:
    streams = entry["thin_streams"]
    streams = 4 if streams >= 4 else 2 if streams >= 2 else 1  # as the kernels clamp it
    model = TileModel(
        entry.name,
        (entry["tile_max_rows"], entry["tile_max_cols"]),
        entry["tile_packed_max_cols"],
        entry["tile_pack_flops"],
        entry["tile_narrow_cols"],
        entry["tile_workgroup_flops"],
        entry["tile_wake_flops"],
        entry["tile_one_worker_pct"] / 100,
        entry["tile_thin_bytes"],
        TILE_ALIGN[1] * streams,
        entry["prepack_f32_min_rows"],
    )
    return _with_reason(model, f"target-cpu={entry.target_cpu}: {entry.reason}")


def _with_reason(model: TileModel, reason: str) -> TileModel:
    return dataclasses.replace(model, reason=reason)


def forget_tile_models() -> None:
    """Drop the cached models and tiles: for a process that changed the plugin's live
    configuration (`mips_debug_set_config`, tools/tune_kernels.py), which `host` reads."""
    forget_configs()
    _model_of.cache_clear()
    choose_tiles.cache_clear()


def describe_tile_model(target_cpu: str) -> str:
    """The `-v` line: which configuration the tiles are chosen for, and why."""
    model = tile_model(target_cpu)
    if model.config == DEFAULT_TILE_MODEL.config:
        return f"tiles chosen with the default cost model (zen4's constants): {model.reason}"
    return f"tiles chosen for the kernel configuration '{model.config}' ({model.reason})"


def choose_thin_tiles(
    n: int, k: int, workers: int, element_bytes: int, model: TileModel = DEFAULT_TILE_MODEL
) -> int:
    """Columns per tile of a thin product (see THIN_ROWS) with B of k x n elements of
    `element_bytes`: among tile counts that are multiples of `workers` (every core streams
    from the start to the end) and leave each tile at least THIN_TILE_BYTES of B (where B has
    more than that per worker), the one whose busiest worker reads the fewest columns, ties to
    more tiles (a worker that wakes late leaves fewer to the others). Widths are multiples of
    THIN_COLUMN_ALIGN, or of TILE_ALIGN's 32 where n is too narrow to give each worker one
    (both constants: `model`'s, see TileModel)."""
    column_align, tile_bytes = model.thin_column_align, model.thin_tile_bytes
    align = column_align if n >= workers * column_align else TILE_ALIGN[1]
    most = max(workers, (n * k * element_bytes) // tile_bytes // workers * workers)
    best: tuple[int, int] | None = None  # (busiest worker's columns, -tiles)
    chosen = _round_up(n, align)
    for tiles in range(workers, most + 1, workers):
        width = _even_tile(n, tiles, align)
        count = -(-n // width)
        score = (-(-count // workers) * width, -count)
        if best is None or score < best:
            best, chosen = score, width
    return chosen


@functools.cache
def choose_tiles(
    m: int,
    n: int,
    batch: int,
    k: int,
    workers: int = 0,
    packed_b: bool = False,
    element_bytes: int = 4,
    model: TileModel | None = None,
) -> tuple[int, int]:
    """Output tile (rows, cols) per workgroup for a product of this shape.

    Among the ways of cutting C into equal aligned tiles (at most MAX_TILE), take the one with
    the shortest estimated time on `workers` IREE workers (0: default_workers()), plus
    ONE_WORKER_WEIGHT times that on one: a tile's cost is its flops (slower for narrow
    tiles), packing its A and B panels, and a fixed cost per workgroup; the time is the
    busiest worker's tiles, as IREE hands them out (one at a time: 25 tiles on 2 workers
    run as 13 + 12).
    Fewer, larger tiles re-pack less (each workgroup packs its own panels: A is read once per
    column of tiles and B once per row of tiles); more tiles keep more workers busy. Dynamic
    M or N get a middle-sized tile. With `packed_b` (B packed once at load, pack-weights) no
    tile packs B: only A's packing counts, and products of WIDE_PACKED_ROWS rows may take
    tiles up to MAX_PACKED_TILE_COLS wide. Thin products (M <= THIN_ROWS, no batch, static N;
    B of `element_bytes` per element) take one row of choose_thin_tiles' columns.

    The constants (in capitals above) are `model`'s: the target CPU's (`tile_model`; None:
    this machine's, `tile_model("host")`).
    """
    model = model or tile_model(HOST)
    if DYNAMIC_INDEX in (m, n):
        return DYNAMIC_TILE
    thin = m <= THIN_ROWS and batch == 1
    m, n = max(m, 1), max(n, 1)
    batch = 1 if batch == DYNAMIC_INDEX else max(batch, 1)
    k = 64 if k == DYNAMIC_INDEX else max(k, 1)
    workers = workers or default_workers()
    if thin:
        return TILE_ALIGN[0], choose_thin_tiles(n, k, workers, element_bytes, model)
    wide = packed_b and WIDE_PACKED_ROWS[0] <= m <= WIDE_PACKED_ROWS[1]
    max_cols = model.max_packed_tile_cols if wide else model.max_tile[1]
    pack_flops, narrow_cols = model.pack_flops, model.narrow_cols

    def cost(rows: tuple[int, int], cols: tuple[int, int]) -> tuple[float, int]:
        (tm, tiles_m), (tn, tiles_n) = rows, cols
        tm, tn = min(tm, m), min(tn, n)
        tile = (
            2.0 * tm * tn * k * (tn + narrow_cols) / tn
            + pack_flops * k * (tm + (0 if packed_b else tn))
            + model.workgroup_flops
        )
        tiles = tiles_m * tiles_n * batch
        # in units of the ideal time (all the work spread evenly over the workers)
        shared = _busiest_worker(tiles, workers) * tile + (model.wake_flops if tiles > 1 else 0)
        time = shared * workers + model.one_worker_weight * tiles * tile
        return time, -tn  # ties: the wider tile

    (tm, _), (tn, _) = min(
        (
            (row, col)
            for row in _tile_options(m, TILE_ALIGN[0], MIN_TILE[0], model.max_tile[0])
            for col in _tile_options(n, TILE_ALIGN[1], MIN_TILE[1], max_cols)
        ),
        key=lambda choice: cost(*choice),
    )
    return tm, tn


def prepack_pays(m: int, n: int, k: int, bf16: bool, model: TileModel = DEFAULT_TILE_MODEL) -> bool:
    """Whether pack-weights should pack a constant B (k x n) of a product with m rows of C
    (DYNAMIC_INDEX when dynamic), f32 or bf16, for the CPU of `model` (its
    prepack_f32_min_rows; see PREPACK_F32_MIN_ROWS)."""
    del n, k  # every size measured gained, or lost, alike
    return bf16 or m == DYNAMIC_INDEX or m >= model.prepack_f32_min_rows
