"""Representativeness and raking weights (pure: no I/O; the raking itself is weightipy's).

Respondents (contacts whose survey completed, AAPOR 1.1) are compared with the whole
contact list by language, age group and area. The weights rake the respondents to the
contact list's margins on those dimensions (iterative proportional fitting, weightipy's
``Rim``), so that weighted, every margin's shares are the contact list's.

Raking is done on the respondents as weightipy's data frame, one row each, made from the
counts per cell (``np.repeat``): every respondent of a cell gets the same weight, so the
weights are kept per cell and the per-contact mapping is built from them.

Where a margin cannot be met, a note says why instead of failing: a dimension not known
for anyone or with one value only is not raked; a group with contacts but no respondents
(the pilots' young people) cannot be weighted up, so its share is dropped from the targets
and the others are scaled to fill it; contacts without a value form a group of their own.
Weights average 1 over the respondents (their sum is the number of respondents).
"""

from __future__ import annotations

import contextlib
import io
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np

from ivr.reports.model import Dimension, Note, Representativeness, Share, WeightsSummary
from ivr.reports.queries import Cell

DIMENSIONS: Final = ("language", "age_group", "area")
METHOD: Final = "raking (weightipy)"
TOLERANCE: Final = 0.001  # a margin met to within 0.1 percentage points


@dataclass(frozen=True, slots=True)
class Weighting:
    representativeness: Representativeness
    summary: WeightsSummary
    cell_weights: Mapping[Cell, float]  # empty: no weights


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def _margin(counts: Mapping[Cell, int], axis: int) -> Counter[str]:
    out: Counter[str] = Counter()
    for cell, n in counts.items():
        out[cell[axis]] += n
    return out


def weigh(contacts: Mapping[Cell, int], respondents: Mapping[Cell, int]) -> Weighting:
    """Compare and weight: ``contacts`` and ``respondents`` per cell."""
    total_contacts = sum(contacts.values())
    total_respondents = sum(respondents.values())
    notes: list[Note] = []
    targets: dict[str, dict[str, float]] = {}
    for axis, name in enumerate(DIMENSIONS):
        c_margin, r_margin = _margin(contacts, axis), _margin(respondents, axis)
        values = [v for v, n in c_margin.items() if n > 0]
        if not total_respondents:
            continue
        if values == [""] or not values:
            notes.append(Note("no_values", name))
            continue
        if len(values) == 1:
            notes.append(Note("single_value", name))
            continue
        if "" in values:
            notes.append(Note("unknown_value", name))
        for value in sorted(values):
            if not r_margin[value]:
                notes.append(Note("missing_stratum", name, value))
        kept = {v: float(c_margin[v]) for v in values if r_margin[v]}
        if len(kept) > 1:
            targets[name] = kept
    if not total_respondents:
        notes.insert(0, Note("no_respondents"))
    cell_weights = _rake(respondents, targets) if targets else {}
    if total_respondents and not cell_weights:
        cell_weights = {cell: 1.0 for cell, n in respondents.items() if n}
    converged = _met(respondents, cell_weights, targets)
    if targets and not converged:
        notes.append(Note("not_converged"))
    used = [w for cell, w in cell_weights.items() if respondents.get(cell)]
    summary = WeightsSummary(
        method=METHOD,
        respondents=total_respondents,
        margins=tuple(d for d in DIMENSIONS if d in targets),
        minimum=min(used) if used else None,
        maximum=max(used) if used else None,
        efficiency=_efficiency(respondents, cell_weights),
        converged=converged,
        notes=tuple(notes),
    )
    dims = tuple(
        _dimension(contacts, respondents, cell_weights, axis, name, name in targets)
        for axis, name in enumerate(DIMENSIONS)
    )
    return Weighting(
        Representativeness(total_contacts, total_respondents, dims), summary, cell_weights
    )


def _dimension(
    contacts: Mapping[Cell, int],
    respondents: Mapping[Cell, int],
    weights: Mapping[Cell, float],
    axis: int,
    name: str,
    weighted: bool,
) -> Dimension:
    c_margin, r_margin = _margin(contacts, axis), _margin(respondents, axis)
    w_margin: Counter[str] = Counter()
    for cell, n in respondents.items():
        w_margin[cell[axis]] += n * weights.get(cell, 0.0)  # type: ignore[assignment]
    c_total, r_total = sum(c_margin.values()), sum(r_margin.values())
    w_total = sum(w_margin.values())
    shares = []
    for value in sorted(c_margin, key=lambda v: (v == "", v)):
        c_share = _ratio(c_margin[value], c_total)
        r_share = _ratio(r_margin[value], r_total)
        shares.append(
            Share(
                value=value,
                contacts=c_margin[value],
                respondents=r_margin[value],
                contact_share=c_share,
                respondent_share=r_share,
                difference=None if c_share is None or r_share is None else r_share - c_share,
                weighted_share=_ratio(w_margin[value], w_total) if weights else None,
                missing=c_margin[value] > 0 and r_margin[value] == 0,
            )
        )
    return Dimension(name, tuple(shares), weighted)


def _rake(
    respondents: Mapping[Cell, int], targets: dict[str, dict[str, float]]
) -> dict[Cell, float]:
    """weightipy's raking over one row per respondent; the weight of each cell."""
    # Imported here (pandas and weightipy are ~50 MB and 0.3 s): a page or command that
    # weights nothing does not load them.
    import pandas as pd  # type: ignore[import-untyped]
    import weightipy  # type: ignore[import-untyped]

    cells = [cell for cell, n in respondents.items() if n > 0]
    axes = [DIMENSIONS.index(name) for name in targets]
    # Values as codes: weightipy's frames and queries need plain column values.
    codes = {name: {v: f"v{i}" for i, v in enumerate(sorted(t))} for name, t in targets.items()}
    repeats = np.array([respondents[c] for c in cells])
    frame = pd.DataFrame(
        {
            name: np.repeat([codes[name].get(c[axis], "none") for c in cells], repeats)
            for name, axis in zip(targets, axes, strict=True)
        }
    )
    scheme = weightipy.scheme_from_dict(
        {name: {codes[name][v]: share for v, share in t.items()} for name, t in targets.items()},
        name="report",
    )
    with contextlib.redirect_stdout(io.StringIO()):  # it prints about convergence
        weights = weightipy.weight(frame, scheme).to_numpy()
    starts = np.concatenate(([0], np.cumsum(repeats)[:-1]))
    return {cell: float(weights[start]) for cell, start in zip(cells, starts, strict=True)}


def _met(
    respondents: Mapping[Cell, int],
    weights: Mapping[Cell, float],
    targets: Mapping[str, Mapping[str, float]],
) -> bool:
    for name, target in targets.items():
        axis = DIMENSIONS.index(name)
        got: Counter[str] = Counter()
        for cell, n in respondents.items():
            got[cell[axis]] += n * weights.get(cell, 0.0)  # type: ignore[assignment]
        total_target, total_got = sum(target.values()), sum(got.values())
        for value, want in target.items():
            if not total_got or abs(got[value] / total_got - want / total_target) > TOLERANCE:
                return False
    return True


def _efficiency(respondents: Mapping[Cell, int], weights: Mapping[Cell, float]) -> float | None:
    """Kish's weighting efficiency in percent: (Σw)² / (n · Σw²) · 100."""
    n = sum(respondents.get(c, 0) for c in weights)
    sw = sum(respondents.get(c, 0) * w for c, w in weights.items())
    sww = sum(respondents.get(c, 0) * w * w for c, w in weights.items())
    return sw * sw / (n * sww) * 100 if n and sww else None
