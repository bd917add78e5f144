"""The pure core of the staff UI's form-based flow editor (no I/O, no web code).

A municipal manager edits a flow as an ordered list of steps, each with its texts in the
flow's languages side by side; the page renders :func:`to_form` and reads the submitted
fields back with :func:`from_form`. The steps are the flow format's node kinds (``say``,
``language``, ``choice``, ``scale``, ``number``, ``open``, ``callback``, ``transfer``,
``end``) with the format's own field names.

- :func:`open_flow` validates YAML with the project's loader and returns an
  :class:`Editable`, or a :class:`ReadOnly` with the reasons (a code, params and YAML path,
  rendered in English by ``reason.message``; translate with ``reason.render(templates)``).
- :func:`save_flow` writes the YAML; for a flow that opens editable,
  ``open_flow(save_flow(open_flow(text))) == open_flow(text)`` and the loader builds the
  same flow from both texts.
- :func:`to_form` / :func:`from_form` (raising :class:`FormErrors`), :func:`check_flow`,
  :func:`field_for_path`; :func:`read_form` gives the flow a form describes even while it
  has problems, with the problems ``from_form`` would raise (so that steps can be added,
  removed and moved in a form that is not yet valid).
- :func:`new_flow`, :func:`add_step`, :func:`remove_step`, :func:`move_step` (raising
  :class:`EditRefused`), :func:`prompts_of`.
- uploaded prompts (``upload: {fi: NAME}`` on a prompt; the text stays as transcript):
  :func:`set_upload`, :func:`clear_upload` (raising :class:`EditRefused`),
  :func:`upload_of`, :func:`prompt_audio_of` (:class:`PromptAudio`). The uploads are the
  ``upload`` fields beside the texts (``Step.upload``, ``Step.no_input_upload``,
  ``Question.upload``, ``Defaults.invalid_upload``, ``Editable.opt_out_upload``, ...).
"""

from __future__ import annotations

from ivr.flows.editor_check import Names, check_flow, field_for_path
from ivr.flows.editor_form import from_form, read_form, to_form
from ivr.flows.editor_model import (
    LANGUAGE_NAMES,
    MESSAGES,
    QUESTION_FIELDS,
    STEP_KINDS,
    Defaults,
    Editable,
    EditRefused,
    FieldError,
    FormErrors,
    Hours,
    Option,
    Question,
    QuestionField,
    ReadOnly,
    Reason,
    Step,
    StepKind,
    Texts,
    Uploads,
    render,
)
from ivr.flows.editor_ops import (
    PromptText,
    add_step,
    move_step,
    new_flow,
    new_step,
    prompts_of,
    remove_step,
)
from ivr.flows.editor_uploads import (
    PromptAudio,
    clear_upload,
    prompt_audio_of,
    set_upload,
    upload_of,
)
from ivr.flows.editor_yaml import open_flow, save_flow

__all__ = [
    "LANGUAGE_NAMES",
    "MESSAGES",
    "QUESTION_FIELDS",
    "STEP_KINDS",
    "Defaults",
    "EditRefused",
    "Editable",
    "FieldError",
    "FormErrors",
    "Hours",
    "Names",
    "Option",
    "PromptAudio",
    "PromptText",
    "Question",
    "QuestionField",
    "ReadOnly",
    "Reason",
    "Step",
    "StepKind",
    "Texts",
    "Uploads",
    "add_step",
    "check_flow",
    "clear_upload",
    "field_for_path",
    "from_form",
    "move_step",
    "new_flow",
    "new_step",
    "open_flow",
    "prompt_audio_of",
    "prompts_of",
    "read_form",
    "remove_step",
    "render",
    "save_flow",
    "set_upload",
    "to_form",
    "upload_of",
]
