"""Per-question distributions from counted answers (pure).

A question is a flow node of kind choice, scale or number; its rows are the node's options
in the flow's order (choice), every point of the scale (scale), or the values given in
numeric order (number). A value that the flow does not list (an answer stored under an
earlier version of the flow) is shown as given, after the listed ones. Labels are the
options' labels in the report language, else the flow's default language, else the value.

Unweighted counts are every call's latest answer to the question (also of calls that did
not complete); the weighted column counts only the answers of completed respondents, each
with its raking weight (``ivr.reports.weighting``), as the weights exist only for them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from ivr.flows.model import Flow, Node
from ivr.reports.model import OptionCount, QuestionResult
from ivr.reports.queries import AnswerGroup, Cell

KINDS = ("choice", "scale", "number")


def _number_key(value: str) -> tuple[int, float, str]:
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)


def _listed(node: Node | None, language: str, default: str) -> list[tuple[str, str]]:
    """The values a node lists, with their labels."""
    if node is None:
        return []
    if node.kind == "choice":
        return [
            (o.value, o.label.get(language) or o.label.get(default) or o.value)
            for o in node.options
        ]
    if node.kind == "scale" and node.max_value - node.min_value <= 20:
        return [(str(v), str(v)) for v in range(node.min_value, node.max_value + 1)]
    return []


def _prompt(node: Node | None, language: str, default: str) -> str:
    if node is None or node.prompt is None:
        return ""
    text = node.prompt.text
    return str(text.get(language) or text.get(default) or "").strip()


def questions(
    groups: Iterable[AnswerGroup],
    flow: Flow | None,
    language: str,
    cell_weights: Mapping[Cell, float],
) -> tuple[QuestionResult, ...]:
    """Every question of the flow (in the flow's order) and any other answered node."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    resp: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    weighted: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    kinds: dict[str, str] = {}
    for g in groups:
        kinds.setdefault(g.node_id, g.kind)
        counts[g.node_id][g.value] += g.answers
        if g.respondent:
            resp[g.node_id][g.value] += g.answers
            weighted[g.node_id][g.value] += g.answers * cell_weights.get(g.cell, 0.0)
    default = flow.default_language if flow else language
    order: list[str] = []
    if flow is not None:
        order = [n.id for n in flow.nodes.values() if n.kind in KINDS]
    order += sorted(k for k in counts if k not in order)
    has_weights = bool(cell_weights)
    results = []
    for node_id in order:
        node = flow.nodes.get(node_id) if flow is not None else None
        kind = node.kind if node is not None else kinds.get(node_id, "choice")
        listed = _listed(node, language, default)
        known = {v for v, _ in listed}
        extra = sorted((v for v in counts[node_id] if v not in known), key=_number_key)
        rows = listed + [(v, v) for v in extra]
        total = sum(counts[node_id].values())
        r_total = sum(resp[node_id].values())
        w_total = sum(weighted[node_id].values())
        options = tuple(
            OptionCount(
                value=value,
                label=label,
                count=counts[node_id].get(value, 0),
                share=counts[node_id].get(value, 0) / total if total else None,
                respondents=resp[node_id].get(value, 0),
                weighted=weighted[node_id].get(value, 0.0) if has_weights else None,
                weighted_share=(
                    weighted[node_id].get(value, 0.0) / w_total if has_weights and w_total else None
                ),
            )
            for value, label in rows
        )
        results.append(
            QuestionResult(
                node_id=node_id,
                kind=str(kind),
                text=_prompt(node, language, default),
                answers=total,
                respondents=r_total,
                options=options,
            )
        )
    return tuple(results)
