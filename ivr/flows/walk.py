"""Walking a flow's content (pure): every prompt it can say, in every language."""

from __future__ import annotations

from collections.abc import Iterator

from ivr.flows.model import Flow, Prompt

# Node kinds that wait for keys and so can say the no-input / invalid-key prompts.
INPUT_KINDS = frozenset({"language", "choice", "scale", "number", "callback"})


def _prompts(flow: Flow) -> Iterator[tuple[str, Prompt | None]]:
    for node_id, node in flow.nodes.items():
        base = f"nodes.{node_id}"
        yield f"{base}.prompt", node.prompt
        for index, step in enumerate(node.steps):
            yield f"{base}.steps.{index}.prompt", step.prompt
        if node.kind in INPUT_KINDS:
            yield f"{base}.no_input", node.no_input
            yield f"{base}.invalid", node.invalid
    yield "opt_out_prompt", flow.opt_out_prompt


def iter_prompts(flow: Flow) -> Iterator[tuple[str, str, Prompt]]:
    """``(path, language, prompt)`` for every prompt of ``flow`` and every flow language.

    Nodes come in the flow's order; each node's prompt, then its callback steps' prompts,
    then its no-input and invalid-key prompts; the opt-out prompt last. A prompt shared by
    several nodes (the flow's ``defaults.no_input``, say) is listed once, under the first
    path that uses it.
    """
    seen: set[int] = set()
    for path, prompt in _prompts(flow):
        if prompt is None or id(prompt) in seen:
            continue
        seen.add(id(prompt))
        for language in flow.languages:
            yield path, language, prompt


def prompt_paths(flow: Flow) -> dict[int, str]:
    """The first path of each prompt object in ``flow`` (by identity), for error messages."""
    paths: dict[int, str] = {}
    for path, prompt in _prompts(flow):
        if prompt is not None:
            paths.setdefault(id(prompt), path)
    return paths
