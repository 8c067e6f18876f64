"""The base of every deg widget: strict constructor, front end from static/, visible errors."""

from __future__ import annotations

import functools
import logging
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anywidget
import traitlets

STATIC = Path(__file__).parent / "static"
log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
_MISSING_ESM = (
    'export default { render({ el }) { el.textContent = "deg: static/FILE is missing"; } };'
)


class DegWidget(anywidget.AnyWidget):
    """An anywidget whose front end is ``static/<_module>.js`` (plain ESM, no bundler).

    Unknown keyword arguments raise ``TypeError`` (ipywidgets silently accepts any
    keyword, so a typo such as ``vidoe=`` would otherwise be ignored). An exception in
    a Python callback is caught by :func:`reported`, logged, and shown in the widget
    through the ``error`` trait instead of vanishing into the kernel log.
    """

    _module: str = ""  # subclasses name their front-end file (without .js)
    error = traitlets.Unicode("").tag(sync=True)  # last callback error; "" = none

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Only a class that names its own _module: traitlets' add_traits() (called by
        # AnyWidget.__init__) makes a subclass on the fly, which must keep the _esm trait.
        # Set before AnyWidget.__init_subclass__, which turns the paths into file contents.
        module = cls.__dict__.get("_module")
        if module:
            js = STATIC / f"{module}.js"
            # a missing front end shows itself instead of failing the import
            cls._esm = js if js.exists() else _MISSING_ESM.replace("FILE", js.name)
            css = STATIC / f"{module}.css"
            if css.exists():
                cls._css = css
        super().__init_subclass__(**kwargs)

    def __init__(self, **kwargs: Any) -> None:
        known = set(self.trait_names()) | {"layout", "tooltip"}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"{type(self).__name__}() got unknown keyword(s): {', '.join(unknown)}")
        super().__init__(**kwargs)

    def report(self, exc: BaseException) -> None:
        """Show ``exc`` in the widget (one line) and log the traceback."""
        log.error("%s: %s", type(self).__name__, "".join(traceback.format_exception(exc)))
        self.error = f"{type(exc).__name__}: {exc}"


def reported(method: F) -> F:
    """Decorate a widget callback so its exceptions reach ``DegWidget.error``."""

    @functools.wraps(method)
    def wrapper(self: DegWidget, *args: Any, **kwargs: Any) -> Any:
        try:
            result = method(self, *args, **kwargs)
        except Exception as exc:
            self.report(exc)
            return None
        if self.error:
            self.error = ""
        return result

    return wrapper  # type: ignore[return-value]
