"""Front-end messages of the :class:`~deg_widgets.labeler.Labeler` -> its public methods.

The message shapes are listed in the ``deg_widgets.labeler`` module docstring; each one is
routed to the method of the same meaning, which reports its own errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deg_widgets.labeler import Labeler

__all__ = ["route_message"]


def _field(content: dict[str, Any], name: str, default: Any = ...) -> Any:
    if name in content:
        return content[name]
    if default is not ...:
        return default
    raise ValueError(f"{content.get('type')!r} message lacks {name!r}")


def route_message(w: Labeler, content: dict[str, Any]) -> None:
    """Call ``w``'s method for ``content``; ValueError for a malformed message."""
    if not isinstance(content, dict):
        raise ValueError(f"a message must be an object, got {type(content).__name__}")
    kind = content.get("type")
    c = content
    if kind == "frames":
        w.send_frames(_field(c, "req"), _field(c, "indices"))
    elif kind == "set":
        w.set_range(
            _field(c, "behavior"),
            _field(c, "start"),
            _field(c, "stop"),
            _field(c, "value"),
            _field(c, "group", None),
        )
    elif kind == "toggle":
        w.toggle(_field(c, "behavior"), _field(c, "frame"))
    elif kind == "undo":
        w.undo()
    elif kind == "redo":
        w.redo()
    elif kind == "save":
        w.save(force=bool(_field(c, "force", False)))
    elif kind == "reload":
        w.reload()
    elif kind == "finalize":
        w.finalize()
    elif kind == "import_predictions":
        w.import_predictions(overwrite=bool(_field(c, "overwrite", False)))
    elif kind == "reference":
        w.show_reference(_field(c, "labeler", None))
    elif kind == "seek":
        target = _field(c, "target")
        direction = int(_field(c, "direction", 1) or 1)
        if target in ("next_bout", "prev_bout"):
            sign = 1 if target == "next_bout" else -1
            w.seek_bout(sign, _field(c, "behavior", None))
        elif target == "uncertain":
            w.seek_uncertain(direction)
        elif target == "disagree":
            w.seek_disagreement(direction)
        elif target == "annotators":
            w.seek_annotator_disagreement(direction)
        elif target == "swap":
            w.seek_swap(direction)
        else:
            raise ValueError(f"unknown seek target {target!r}")
    elif kind == "swap_identities":
        w.swap_identities(_field(c, "a"), _field(c, "b"), _field(c, "frame"))
    else:
        raise ValueError(f"unknown message type {kind!r}")
