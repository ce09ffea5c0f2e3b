"""The tile policy (mipsc.tiling): equal aligned tiles, chosen for IREE's workers."""

import pytest

from mipsc.tiling import (
    IREE_TILES_PER_RESERVATION,
    MAX_PACKED_TILE_COLS,
    MAX_TILE,
    THIN_COLUMN_ALIGN,
    THIN_ROWS,
    THIN_TILE_BYTES,
    TILE_ALIGN,
    WIDE_PACKED_ROWS,
    _busiest_worker,
    _round_up,
    choose_tiles,
)


@pytest.mark.parametrize(
    ("m", "n", "batch", "k", "count"),
    [
        (37, 23, 1, 19, 1),  # small: one workgroup
        (256, 256, 1, 256, 2),  # one per worker
        (256, 512, 1, 384, 2),
        (512, 512, 1, 512, 2),  # 516x256: B packed once
        (1024, 1024, 1, 1024, 8),
        (2048, 2048, 1, 2048, 32),  # tiles capped at MAX_TILE
        (1536, 1536, 1, 1536, 18),  # 516x256: IREE hands them out one at a time, 9 + 9
        (128, 2304, 1, 768, 12),  # one row of tiles: the weights are packed once
        (1, 1000, 1, 1000, 2),  # thin: one tile per worker (4 MB of B)
        (8, 8, 16, 64, 16),  # the batch alone gives enough workgroups
    ],
)
def test_choose_tiles(m, n, batch, k, count):
    tm, tn = choose_tiles(m, n, batch, k, workers=2)
    assert -(-m // tm) * -(-n // tn) * batch == count
    assert tm % TILE_ALIGN[0] == 0 and tn % TILE_ALIGN[1] == 0
    if m > THIN_ROWS:  # thin tiles stream B: wider (choose_thin_tiles)
        assert tm <= MAX_TILE[0] and tn <= MAX_TILE[1]
    assert tm < m + TILE_ALIGN[0] and tn < n + THIN_COLUMN_ALIGN  # never far bigger than the matrix


def test_choose_tiles_follows_the_workers():
    """More cores get more (smaller) tiles for the same product; one core gets the fewest."""

    def tiles(workers):
        tm, tn = choose_tiles(512, 512, 1, 512, workers=workers)
        return -(-512 // tm) * -(-512 // tn)

    assert tiles(1) <= tiles(2) < tiles(4) < tiles(8)
    assert tiles(8) >= 8


def test_busiest_worker_follows_iree_one_tile_at_a_time():
    """IREE 3.13's block processor claims one workgroup at a time (IREE_TILES_PER_RESERVATION):
    24 tiles on 2 workers run as 12 + 12, not as 16 + 8 in reservations of 8."""
    assert IREE_TILES_PER_RESERVATION == 1
    assert _busiest_worker(9, 2) == 5
    assert _busiest_worker(24, 2) == 12
    assert _busiest_worker(25, 2) == 13
    assert _busiest_worker(32, 2) == 16
    assert _busiest_worker(1, 4) == 1


def test_tile_counts_not_bent_to_reservations():
    """The encoder's QKV projection at batch 8 (1024x2304x768, B packed at load) takes 18
    tiles of 516x256 on two workers (9 + 9), not 63 smaller ones chosen so that reservations
    of 8 would split evenly (interleaved A/B of the encoder_b8 layer: the same process CPU
    time on 1 and 2 threads)."""
    tm, tn = choose_tiles(1024, 2304, 1, 768, workers=2, packed_b=True)
    assert (tm, tn) == (516, 256)
    assert -(-1024 // tm) * -(-2304 // tn) == 18


def test_choose_tiles_splits_evenly():
    """Equal tiles: the last row of tiles is not a sliver that leaves a core idle."""
    tm, tn = choose_tiles(1000, 1000, 1, 1000, workers=2)
    assert 1000 - (-(-1000 // tm) - 1) * tm > tm // 2
    assert 1000 - (-(-1000 // tn) - 1) * tn > tn // 2


@pytest.mark.parametrize(
    ("m", "n", "k", "packed_cols", "plain_cols"),
    [
        (64, 4096, 1024, 1024, 256),  # the MLP's first product: A packed 4, not 16, times
        (128, 3072, 768, 768, 256),  # a prefill's MLP: 4 tiles, 2 per worker
        (128, 768, 768, 384, 192),  # still one tile per worker
    ],
)
def test_packed_thin_products_get_wide_tiles(m, n, k, packed_cols, plain_cols):
    """A packed B is not re-packed per tile: thin products take tiles up to
    MAX_PACKED_TILE_COLS wide, so that A is packed fewer times, but not fewer than workers."""
    tm, tn = choose_tiles(m, n, 1, k, workers=2, packed_b=True)
    assert (tm, tn) == (_round_up(m, TILE_ALIGN[0]), packed_cols)
    assert tn <= MAX_PACKED_TILE_COLS and -(-n // tn) >= 2
    assert choose_tiles(m, n, 1, k, workers=2, packed_b=False)[1] == plain_cols


@pytest.mark.parametrize(("m", "n", "k"), [(16, 4096, 1024), (5, 4096, 1024), (1024, 3072, 768)])
def test_packed_few_rows_and_tall_products_keep_their_tiles(m, n, k):
    """Few rows (5 to 16; up to THIN_ROWS see test_thin_tiles) and tall products (several A blocks per tile, each
    sweeping the tile's B, which should stay in L2) keep tiles at most MAX_TILE wide."""
    assert m not in range(WIDE_PACKED_ROWS[0], WIDE_PACKED_ROWS[1] + 1)
    assert choose_tiles(m, n, 1, k, workers=2, packed_b=True)[1] <= MAX_TILE[1]


@pytest.mark.parametrize(
    ("n", "k", "element_bytes", "workers", "width"),
    [
        (2048, 2048, 4, 2, 256),  # Llama decode q/o, f32: 8 tiles of 2 MiB
        (2048, 2048, 2, 2, 512),  # bf16: 4 tiles of 2 MiB
        (5632, 2048, 2, 2, 1408),  # the MLP's gate/up, bf16: 4 tiles, 2 per worker
        (5632, 2048, 4, 1, 256),  # one worker: 22 tiles of 2 MiB
        (256, 2048, 4, 2, 128),  # k/v projections: one tile per worker, under 2 MiB
        (2048, 5632, 4, 2, 128),  # the down projection: 16 tiles of 2.9 MB
        (200, 64, 4, 2, 128),  # narrow: 32-column tiles where 128 would leave a worker idle
    ],
)
def test_thin_tiles(n, k, element_bytes, workers, width):
    for m in range(1, THIN_ROWS + 1):
        tm, tn = choose_tiles(m, n, 1, k, workers, element_bytes == 2, element_bytes)
        assert (tm, tn) == (TILE_ALIGN[0], width)
    tiles = -(-n // width)
    if n >= workers * THIN_COLUMN_ALIGN:
        assert width % THIN_COLUMN_ALIGN == 0
        assert tiles % workers == 0  # every worker streams all along
    if n * k * element_bytes >= workers * THIN_TILE_BYTES:
        assert width * k * element_bytes >= THIN_TILE_BYTES or n - (tiles - 1) * width < width


def test_thin_tiles_only_for_few_rows_without_batch():
    """5 rows, or a batch, go to the GEMM cost model (tiles at most MAX_TILE)."""
    assert choose_tiles(5, 2048, 1, 2048, 2)[1] <= MAX_TILE[1]
    assert choose_tiles(1, 2048, 4, 2048, 2)[1] <= MAX_TILE[1]
