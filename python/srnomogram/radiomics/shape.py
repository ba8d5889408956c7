"""PyRadiomics' 3D ``shape`` class with the same numbers, without its all-pairs diameter search.

PyRadiomics 3.0.1 (``radiomics/src/cshape.c``) builds a marching-cubes mesh of the padded mask
(vertices at the midpoints of the grid edges whose two voxels differ), sums triangle areas and
signed tetrahedron volumes, and then compares *every pair* of mesh vertices to find the maximum
3D diameter and the maximum diameters within slice / column / row planes. On one-slice
ultrasound masks the mesh has about twice as many vertices as the lesion has pixels, so a large
lesion costs 10^10 distance evaluations (minutes per lesion).

Here the same four maxima come from a small candidate set instead. The farthest pair of a point
set is a pair of vertices of its convex hull (the distance to a fixed point is convex), so points
that cannot be hull vertices are dropped, exactly, in integer (doubled-index) coordinates:

1. a vertex lying strictly between two others on a line parallel to a grid axis (lines along x
   and y lie in a slice plane, along z and x in a column plane, ...);
2. within each plane, a vertex that is not a vertex of that plane's 2D convex hull (monotone
   chain with exact integer orientation tests); a 3D hull vertex is a hull vertex of its plane.

The maxima over the remaining pairs use PyRadiomics' own coordinates and floating-point
expression ``(dz² + dy²) + dx²``, so they are bit-identical to ``cshape.c``'s. Only when more
than ``_MAX_BRUTE`` candidates remain for the 3D diameter (large true 3D volumes) does Qhull
prune them further (exact up to Qhull's precision, ~1e-13 relative).

Surface area and volume are sums over the 2x2x2 cubes of the mask; each cube's contribution is
a fixed function of its 8-corner configuration (area) or an affine function of its position
(volume, because PyRadiomics sums signed tetrahedra against the array origin; all of them scale
with the product of the spacings). The per-configuration coefficients are not re-typed from
PyRadiomics' tables: they are measured by calling PyRadiomics' own C routine on single cubes
(area: per spacing and only for the configurations a mask uses; volume: once, at unit spacing),
so they are PyRadiomics' numbers by construction.
"""

from __future__ import annotations

import functools

import numpy as np

# corner k of a 2x2x2 cube sits at offset ((k >> 2) & 1, (k >> 1) & 1, k & 1) in (z, y, x)
_CORNERS = np.array([[(k >> 2) & 1, (k >> 1) & 1, k & 1] for k in range(8)], dtype=np.intp)
_MAX_BRUTE = 6000  # above this many candidates, prune with the convex hull before the pair search
_BLOCK = 2048


def _cshape():
    from radiomics import cShape

    return cShape


def _cube(config: int) -> np.ndarray:
    cube = np.zeros((2, 2, 2), dtype=bool)
    for k in range(8):
        if config >> k & 1:
            cube[tuple(_CORNERS[k])] = True
    return cube


@functools.lru_cache(maxsize=1)
def _unit_volume_tables():
    """Per-configuration volume coefficients at unit spacing, measured with PyRadiomics' cShape.

    Returns ``vol0[256]`` and ``grad[3, 256]`` such that a cube of configuration ``c`` whose
    first corner has array index ``t = (iz, iy, ix)`` contributes ``vol0[c] + t @ grad[:, c]``
    to PyRadiomics' mesh volume. Every signed tetrahedron volume scales with the product of the
    spacings, so one table serves every spacing.
    """
    calc = _cshape().calculate_coefficients
    sp = np.ones(3)
    vol0 = np.zeros(256)
    grad = np.zeros((3, 256))
    for c in range(1, 255):
        _, vol0[c], _ = calc(_cube(c), sp)
    for c in range(1, 255):
        cube = _cube(c)
        for axis in range(3):
            shape = [2, 2, 2]
            shape[axis] = 3
            arr = np.zeros(shape, dtype=bool)
            sl = [slice(None)] * 3
            sl[axis] = slice(1, 3)
            arr[tuple(sl)] = cube
            sl[axis] = slice(0, 2)
            first = np.ascontiguousarray(arr[tuple(sl)])
            _, v_both, _ = calc(arr, sp)
            _, v_first, _ = calc(first, sp)
            grad[axis, c] = v_both - v_first - vol0[c]
    return vol0, grad


_AREA_TABLES: dict = {}


def _area_table(spacing: tuple[float, float, float], configs: np.ndarray) -> np.ndarray:
    """Mesh area of a single cube of each configuration at ``spacing`` (cShape, measured lazily).

    Only the configurations present in a mask are measured (a lesion uses a few dozen of the
    254), and the values are kept per spacing for the life of the process.
    """
    table = _AREA_TABLES.get(spacing)
    if table is None:
        if len(_AREA_TABLES) > 256:
            _AREA_TABLES.clear()
        table = _AREA_TABLES[spacing] = np.full(256, np.nan)
        table[0] = table[255] = 0.0
    missing = [int(c) for c in configs if np.isnan(table[c])]
    if missing:
        calc = _cshape().calculate_coefficients
        sp = np.asarray(spacing, dtype=np.float64)
        for c in missing:
            table[c] = calc(_cube(c), sp)[0]
    return table


def _configs(mask: np.ndarray) -> np.ndarray:
    """8-bit corner configuration of every 2x2x2 cube of a 3D boolean array."""
    nz, ny, nx = mask.shape
    m = mask.astype(np.uint8)
    cfg = np.zeros((nz - 1, ny - 1, nx - 1), dtype=np.uint8)
    for k, (oz, oy, ox) in enumerate(_CORNERS):
        cfg |= m[oz:oz + nz - 1, oy:oy + ny - 1, ox:ox + nx - 1] << k
    return cfg


def mesh_area_volume(mask: np.ndarray, spacing) -> tuple[float, float]:
    """Surface area (mm²) and volume (mm³) of PyRadiomics' marching-cubes mesh of ``mask``.

    Parameters
    ----------
    mask : ndarray of bool, shape (z, y, x)
        The mask, already padded with a zero border (as ``RadiomicsShape`` pads it).
    spacing : sequence of 3 floats
        Voxel spacing in (z, y, x) order, mm.
    """
    spacing = tuple(float(v) for v in spacing)
    cfg = _configs(mask)
    idx = np.flatnonzero((cfg != 0) & (cfg != 255))
    c = cfg.reshape(-1)[idx]
    area = _area_table(spacing, np.unique(c))
    vol0, grad = _unit_volume_tables()
    iz, iy, ix = np.unravel_index(idx, cfg.shape)
    surface = float(np.sum(area[c]))
    unit = np.sum(vol0[c]) + np.sum(iz * grad[0, c]) + np.sum(iy * grad[1, c]) + np.sum(ix * grad[2, c])
    volume = float(unit * (spacing[0] * spacing[1] * spacing[2]))
    return surface, volume


def mesh_vertices(mask: np.ndarray) -> np.ndarray:
    """Mesh vertices of ``mask`` in doubled index units (int64, shape (n, 3), z-y-x order).

    A vertex sits at the midpoint of every grid edge whose two voxels differ; doubling makes
    the half-integer coordinates integers. These are the points PyRadiomics stores for its
    diameter search (edges 6, 7 and 11 of every cube cover each grid edge exactly once).
    """
    m = mask.astype(bool)
    parts = []
    for axis in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis] = slice(0, -1)
        hi[axis] = slice(1, None)
        diff = m[tuple(lo)] != m[tuple(hi)]
        pts = np.argwhere(diff).astype(np.int64) * 2
        pts[:, axis] += 1
        parts.append(pts)
    return np.concatenate(parts, axis=0)


def _line_extremes(pts: np.ndarray, axis: int) -> np.ndarray:
    """Boolean mask of the points that are the minimum or maximum on their line parallel to ``axis``."""
    if len(pts) == 0:
        return np.zeros(0, dtype=bool)
    others = [a for a in range(3) if a != axis]
    span = pts.max(axis=0) + 1
    line = pts[:, others[0]] * span[others[1]] + pts[:, others[1]]
    order = np.argsort(line * span[axis] + pts[:, axis], kind="stable")
    s = line[order]
    change = s[1:] != s[:-1]
    first = np.r_[True, change]
    last = np.r_[change, True]
    keep = np.zeros(len(pts), dtype=bool)
    keep[order[first | last]] = True
    return keep


def _physical(pts: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    # PyRadiomics: (index + 0.5 or 1.0) * spacing; index + half is exactly doubled * 0.5
    return (pts.astype(np.float64) * 0.5) * spacing


def _max_sq_all(phys: np.ndarray) -> float:
    """Largest squared distance over all pairs, with PyRadiomics' expression (dz² + dy²) + dx²."""
    best = 0.0
    n = len(phys)
    for i in range(0, n, _BLOCK):
        a = phys[i:i + _BLOCK]
        for j in range(i, n, _BLOCK):
            b = phys[j:j + _BLOCK]
            d0 = a[:, None, 0] - b[None, :, 0]
            d1 = a[:, None, 1] - b[None, :, 1]
            d2 = a[:, None, 2] - b[None, :, 2]
            dist = d0 * d0 + d1 * d1 + d2 * d2
            best = max(best, float(dist.max()))
    return best


def _pairs_within_groups(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All index pairs (i < j) inside each position range [start, end), vectorised."""
    sizes = ends - starts
    grp = np.repeat(np.arange(len(sizes)), sizes)
    pos = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes) + starts[grp]
    later = ends[grp] - pos - 1
    first = np.repeat(pos, later)
    offsets = np.arange(len(first)) - np.repeat(np.cumsum(later) - later, later)
    return first, first + 1 + offsets


def _sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d0 = a[:, 0] - b[:, 0]
    d1 = a[:, 1] - b[:, 1]
    d2 = a[:, 2] - b[:, 2]
    return d0 * d0 + d1 * d1 + d2 * d2


def _strictly_inside_extremes(pts: np.ndarray) -> np.ndarray:
    """Boolean mask of the 2D integer points strictly inside the polygon of their 8 extreme points.

    The extremes along x, y, x + y and x - y are hull vertices (or on the hull), so a point strictly
    inside their convex polygon is strictly inside the hull and is not a hull vertex (Akl and
    Toussaint's throw-away step). Exact: integer orientation tests.
    """
    x, y = pts[:, 0], pts[:, 1]
    picks = []
    for key in (x, y, x + y, x - y):
        picks += [int(np.argmin(key)), int(np.argmax(key))]
    ext = pts[np.unique(picks)]
    if len(ext) < 3:
        return np.zeros(len(pts), dtype=bool)
    poly = ext[_monotone_chain(ext)]  # counter-clockwise, no collinear vertex
    if len(poly) < 3:
        return np.zeros(len(pts), dtype=bool)
    inside = np.ones(len(pts), dtype=bool)
    for a, b in zip(poly, np.roll(poly, -1, axis=0)):
        inside &= (b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0]) > 0
    return inside


def _hull2d(pts: np.ndarray) -> np.ndarray:
    """Indices of the vertices of the convex hull of 2D integer points (monotone chain, exact)."""
    if len(pts) > 32:  # drop the points that cannot be vertices first (vectorised), then walk the rest
        keep = np.flatnonzero(~_strictly_inside_extremes(pts))
        return keep[_monotone_chain(pts[keep])]
    return _monotone_chain(pts)


def _monotone_chain(pts: np.ndarray) -> np.ndarray:
    """Indices of the convex-hull vertices of 2D integer points, counter-clockwise from the lowest-x point."""
    n = len(pts)
    if n <= 3:
        return np.arange(n)
    order = np.lexsort((pts[:, 1], pts[:, 0]))
    p = pts[order].tolist()

    def half(seq):
        out = []
        for i in seq:
            x, y = p[i]
            while len(out) >= 2:
                ox, oy = p[out[-2]]
                ax, ay = p[out[-1]]
                if (ax - ox) * (y - oy) - (ay - oy) * (x - ox) <= 0:
                    out.pop()
                else:
                    break
            out.append(i)
        return out

    lower = half(range(n))
    upper = half(range(n - 1, -1, -1))
    return order[np.array(lower[:-1] + upper[:-1], dtype=np.intp)]


def _plane_groups(pts: np.ndarray, axis: int):
    order = np.argsort(pts[:, axis], kind="stable")
    keys = pts[order, axis]
    bounds = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1], True])
    return order, bounds


def _reduce_planes(pts: np.ndarray, axis: int) -> np.ndarray:
    """Boolean mask of points that are convex-hull vertices within their plane normal to ``axis``."""
    keep = np.ones(len(pts), dtype=bool)
    order, bounds = _plane_groups(pts, axis)
    others = [a for a in range(3) if a != axis]
    for g in np.flatnonzero(np.diff(bounds) > 16):  # smaller planes keep every point
        members = order[bounds[g]:bounds[g + 1]]
        hull = _hull2d(pts[np.ix_(members, others)])
        drop = np.ones(len(members), dtype=bool)
        drop[hull] = False
        keep[members[drop]] = False
    return keep


def _max_sq_grouped(pts: np.ndarray, phys: np.ndarray, axis: int) -> float:
    """Largest squared distance over pairs sharing the same coordinate along ``axis``."""
    if len(pts) < 2:
        return 0.0
    order, bounds = _plane_groups(pts, axis)
    starts, ends = bounds[:-1], bounds[1:]
    big = (ends - starts) > 256
    best = 0.0
    for s, e in zip(starts[big], ends[big]):
        best = max(best, _max_sq_all(phys[order[s:e]]))
    small = ~big & ((ends - starts) > 1)
    if small.any():
        i, j = _pairs_within_groups(starts[small], ends[small])
        if len(i):
            best = max(best, float(_sq_dist(phys[order[i]], phys[order[j]]).max()))
    return best


def _hull_prune(pts: np.ndarray) -> np.ndarray:
    """Indices of the convex-hull vertices of integer points (Qhull), or all if degenerate."""
    from scipy.spatial import ConvexHull, QhullError

    spread = [a for a in range(pts.shape[1]) if np.ptp(pts[:, a]) > 0]
    if len(pts) <= len(spread) + 1:
        return np.arange(len(pts))
    try:
        hull = ConvexHull(pts[:, spread].astype(np.float64))
    except QhullError:
        return np.arange(len(pts))
    return np.asarray(hull.vertices)


def mesh_diameters(mask: np.ndarray, spacing) -> tuple[float, float, float, float]:
    """PyRadiomics' four mesh diameters: (slice, column, row, 3D) maxima, mm.

    ``diameters[0]`` is the largest distance between vertices with equal z (Maximum 2D diameter
    Slice), ``[1]`` equal y (Column), ``[2]`` equal x (Row), ``[3]`` over all pairs
    (Maximum 3D diameter), exactly as ``cshape.c`` defines them.
    """
    sp = np.asarray(spacing, dtype=np.float64)
    pts = mesh_vertices(mask)
    if len(pts) < 2:
        return (0.0, 0.0, 0.0, 0.0)
    ext = [_line_extremes(pts, a) for a in range(3)]
    out = []
    overall = ext[0] & ext[1] & ext[2]
    for plane_axis in range(3):  # pairs with equal coordinate along plane_axis
        in_plane = [a for a in range(3) if a != plane_axis]
        keep = np.flatnonzero(ext[in_plane[0]] & ext[in_plane[1]])
        hull = np.zeros(len(pts), dtype=bool)
        hull[keep[_reduce_planes(pts[keep], plane_axis)]] = True
        overall &= hull
        cand = pts[hull]
        out.append(_max_sq_grouped(cand, _physical(cand, sp), plane_axis))
    cand = pts[overall]
    if len(cand) > _MAX_BRUTE:
        cand = cand[_hull_prune(cand)]
    out.append(_max_sq_all(_physical(cand, sp)))
    return tuple(float(np.sqrt(v)) for v in out)


def _shape_class():
    """Build the ``RadiomicsShape`` subclass lazily, so importing this module stays light."""
    import SimpleITK as sitk
    from radiomics.shape import RadiomicsShape

    names = RadiomicsShape.getFeatureNames()

    class FastRadiomicsShape(RadiomicsShape):
        """``radiomics.shape.RadiomicsShape`` with the mesh coefficients computed by this module.

        Everything but ``SurfaceArea``, ``Volume`` and ``diameters`` is PyRadiomics' own code path;
        those three are the values ``cShape.calculate_coefficients`` would return.
        """

        @classmethod
        def getFeatureNames(cls):
            return dict(names)  # PyRadiomics introspects the class on every __init__; once is enough

        def _initSegmentBasedCalculation(self):
            self.pixelSpacing = np.array(self.inputImage.GetSpacing()[::-1])
            # RadiomicsShape pads the mask image with one 0 voxel on every side (ConstantPadImageFilter)
            # and takes its array; padding the array gives the same array without a second image
            self.maskArray = np.pad(sitk.GetArrayViewFromImage(self.inputMask) == self.label, 1)
            self.labelledVoxelCoordinates = np.where(self.maskArray != 0)

            self.SurfaceArea, self.Volume = mesh_area_volume(self.maskArray, self.pixelSpacing)
            self.diameters = mesh_diameters(self.maskArray, self.pixelSpacing)

            # principal moments, as RadiomicsShape computes them
            Np = len(self.labelledVoxelCoordinates[0])
            coordinates = np.array(self.labelledVoxelCoordinates, dtype="int").transpose((1, 0))
            physicalCoordinates = coordinates * self.pixelSpacing[None, :]
            physicalCoordinates -= np.mean(physicalCoordinates, axis=0)
            physicalCoordinates /= np.sqrt(Np)
            covariance = np.dot(physicalCoordinates.T.copy(), physicalCoordinates)
            self.eigenValues = np.linalg.eigvals(covariance)
            machine_errors = np.bitwise_and(self.eigenValues < 0, self.eigenValues > -1e-10)
            if np.sum(machine_errors) > 0:
                self.eigenValues[machine_errors] = 0
            self.eigenValues.sort()

    return FastRadiomicsShape


@functools.lru_cache(maxsize=1)
def fast_shape_class():
    """The ``RadiomicsShape`` subclass that uses :func:`mesh_area_volume` and :func:`mesh_diameters`."""
    return _shape_class()
