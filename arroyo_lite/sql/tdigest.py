"""DataFusion's t-digest percentile (``approx_percentile_cont``, ``approx_median``,
``approx_percentile_cont_with_weight``), computed as DataFusion computes it.

DataFusion (``functions-aggregate-common/src/tdigest.rs``, ``DEFAULT_MAX_SIZE`` 100) builds a
digest of at most about ``max_size`` centroids and interpolates between them, so its answer is
*not* the exact percentile, and for the weighted form not even close to the weighted one: there
each row becomes a digest of ``count`` 1 holding one centroid of weight ``w``, so the merged
digest's ``count`` is the number of rows while its centroids weigh the sum of the weights, and
``estimate_quantile`` ranks ``q * count`` along those weights (a median weighted by values
around 10 lands near the 5th weighted percentile). Arroyo's suite (``every_aggregate``) has
the numbers this gives, and this module reproduces them.

What runs here is one digest built in one step from the whole input, as Arroyo's updating
aggregate builds it (it keeps the distinct inputs and makes a fresh accumulator for each
result: ``incremental_aggregator.rs``, ``IncrementalState::Batch``):

* :func:`percentile` with ``weighted=False`` is ``ApproxPercentileAccumulator.update_batch``
  on an empty digest: the values sorted, ``TDigest::merge_sorted_f64``;
* with ``weighted=True`` it is ``ApproxPercentileWithWeightAccumulator.update_batch``: one
  digest per (value, weight), ``TDigest::merge_digests``;
* then ``TDigest::estimate_quantile(q)``.

The compression is a scan in DataFusion (a centroid closes when the running weight passes a
limit that grows with the number of centroids closed); here it is the same decisions made with
whole-array operations (no Python per value): the start of centroid ``p + 1`` is
``max(start_p + 1, first index whose running weight exceeds limit_p)``, which unrolls into a
running maximum. Sums are added in DataFusion's order where the result depends on it (running
weights); the centroid means may differ from DataFusion's in the last bit.

A window's digest in Arroyo is merged from per-batch digests (its batches depend on how the
source delivered rows), which no single-step digest reproduces bit for bit; there the result
is the one-batch digest's.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_MAX_SIZE", "percentile", "percentile_arrow"]

#: DataFusion's ``DEFAULT_MAX_SIZE``: the centroids a digest aims at.
DEFAULT_MAX_SIZE = 100


def _k_to_q(k: Any, d: int) -> Any:
    """DataFusion's ``TDigest::k_to_q`` over an array of ``k``."""
    import numpy as np

    ratio = k / d
    base = 1.0 - ratio
    return np.where(ratio >= 0.5, 1.0 - 2.0 * base * base, 2.0 * ratio * ratio)


def percentile(
    values: Any, weights: Any, q: float, *, weighted: bool, max_size: int = DEFAULT_MAX_SIZE
) -> float | None:
    """DataFusion's t-digest estimate of the ``q`` quantile of ``values`` (a float64 numpy
    array; ``weights`` the same length, used when ``weighted``), ``None`` for no values."""
    import numpy as np

    n = len(values)
    if n == 0:
        return None
    order = np.lexsort((weights, values)) if weighted else np.argsort(values, kind="stable")
    means = np.asarray(values, dtype=np.float64)[order]
    mass = np.asarray(weights, dtype=np.float64)[order] if weighted else np.ones(n)
    # The running weight DataFusion compares with the limits (added in its order).
    running = np.cumsum(mass)
    closed = np.arange(n)
    # The limit in force after `closed` centroids were closed: merge_digests computes the
    # first one twice (k 1, 1, 2, 3...), merge_sorted_f64 steps at once (k 1, 2, 3...).
    k = np.maximum(closed, 1) if weighted else closed + 1
    limits = _k_to_q(k.astype(np.float64), max_size) * float(n)
    first_over = np.searchsorted(running, limits, side="right")
    offsets = np.maximum.accumulate(np.concatenate(([0], first_over - closed - 1)))[:n]
    starts = closed + np.maximum(offsets, 0)
    starts = starts[starts < n]
    weight = np.add.reduceat(mass, starts)
    total = np.add.reduceat(means * mass, starts)
    centroid_means = total / weight
    sort = np.argsort(centroid_means, kind="stable")
    centroid_means, weight = centroid_means[sort], weight[sort]
    return _estimate(centroid_means, weight, float(n), float(means[0]), float(means[-1]), q)


def _estimate(
    means: Any, weights: Any, count: float, low: float, high: float, q: float
) -> float:
    """``TDigest::estimate_quantile``."""
    import numpy as np

    rank = q * count
    last = len(means) - 1
    if q > 0.5:
        if q >= 1.0:
            return high
        # t = count - w[last] - w[last - 1] - ..., subtracted one at a time.
        remaining = np.subtract.accumulate(np.concatenate(([count], weights[::-1])))[1:]
        hits = np.nonzero(rank >= remaining)[0]
        if len(hits):
            pos = last - int(hits[0])
            t = float(remaining[hits[0]])
        else:
            pos, t = 0, float(remaining[-1])
    else:
        if q <= 0.0:
            return low
        through = np.cumsum(weights)
        hits = np.nonzero(rank < through)[0]
        if len(hits):
            pos = int(hits[0])
            t = float(through[pos - 1]) if pos else 0.0
        else:
            pos, t = last, float(through[-1])
    delta = 0.0
    lo, hi = low, high
    if last > 0:
        if pos == 0:
            delta = float(means[1] - means[0])
            hi = float(means[1])
        elif pos == last:
            delta = float(means[pos] - means[pos - 1])
            lo = float(means[pos - 1])
        else:
            delta = float(means[pos + 1] - means[pos - 1]) / 2.0
            lo, hi = float(means[pos - 1]), float(means[pos + 1])
    value = float(means[pos]) + ((rank - t) / float(weights[pos]) - 0.5) * delta
    if lo == float("inf"):
        lo = float("-inf")
    if hi == float("-inf"):
        hi = float("inf")
    return min(max(value, lo), hi)


def percentile_arrow(points: Any, q: Any, max_size: Any, weighted: Any) -> Any:
    """The DuckDB function over Arrow arrays: ``points`` a list of ``{v, w}`` structs per row
    (a group's inputs; entries with a NULL value or weight are skipped, as DataFusion skips
    NULL values), ``q`` / ``max_size`` / ``weighted`` the call's constants. One float64 (or
    NULL for no inputs) per row."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    lists: Any = points.combine_chunks() if isinstance(points, pa.ChunkedArray) else points
    flat = lists.values  # with `offsets`, positions into it (also for a sliced array)
    values = flat.field("v")
    weights = flat.field("w")
    keep = pc.and_(pc.is_valid(values), pc.is_valid(weights))
    v = values.to_numpy(zero_copy_only=False)
    w = weights.to_numpy(zero_copy_only=False)
    kept = keep.to_numpy(zero_copy_only=False)
    offsets = lists.offsets.to_numpy()
    qs, sizes, flags = (_column(a) for a in (q, max_size, weighted))
    valid = lists.is_valid().to_pylist()
    out: list[float | None] = []
    for row in range(len(lists)):  # one call per group (a result row), not per value
        if not valid[row] or qs[row] is None:
            out.append(None)
            continue
        begin, end = offsets[row], offsets[row + 1]
        mask = kept[begin:end]
        out.append(
            percentile(
                np.asarray(v[begin:end][mask], dtype=np.float64),
                np.asarray(w[begin:end][mask], dtype=np.float64),
                float(qs[row]),
                weighted=bool(flags[row]),
                max_size=int(sizes[row]) if sizes[row] is not None else DEFAULT_MAX_SIZE,
            )
        )
    return pa.array(out, type=pa.float64())


def _column(array: Any) -> list[Any]:
    import pyarrow as pa

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return list(array.to_pylist())
