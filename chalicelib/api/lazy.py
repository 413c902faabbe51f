"""Names imported on first use, so that a cold start imports only what its function needs.

Lambda runs one function per handler of app.py (the API, the authorizer, the stream and queue
handlers, the schedules), and an API cold start serves one route first; but importing app.py
declares every route. So a route module (and the API plumbing they share) names the models
and services it uses through `lazy`, under `if TYPE_CHECKING:` imports of the same names for
the type checker and the layout rules:

    if TYPE_CHECKING:
        from chalicelib.services import sessions
    else:
        sessions = lazy("chalicelib.services", "sessions")

`from chalicelib.services import sessions` runs when `sessions` is first used (an attribute,
a call, an item, an instance check), not when the route module is imported. The routing
declaration (chalicelib/api/routing.py) takes such names as a route's body, responses and
query, and resolves them only when the OpenAPI document is built.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any


class Lazy:
    """`from <module> import <name>`, done on first use; then every use goes to the object."""

    __slots__ = ("_module", "_name", "_target")

    def __init__(self, module: str, name: str) -> None:
        self._module = module
        self._name = name
        self._target: Any = None

    def resolve(self) -> Any:
        if self._target is None:
            module = importlib.import_module(self._module)
            try:
                self._target = getattr(module, self._name)
            except AttributeError:  # a submodule not imported yet, as `from package import module`
                self._target = importlib.import_module(f"{self._module}.{self._name}")
        return self._target

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.resolve(), attribute)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __getitem__(self, key: Any) -> Any:
        return self.resolve()[key]

    def __contains__(self, item: Any) -> bool:
        return item in self.resolve()

    def __iter__(self) -> Iterator[Any]:
        return iter(self.resolve())

    def __instancecheck__(self, instance: Any) -> bool:
        return isinstance(instance, self.resolve())

    def __subclasscheck__(self, subclass: Any) -> bool:
        return issubclass(subclass, self.resolve())

    def __repr__(self) -> str:
        return f"<lazy {self._module}.{self._name}>"


def lazy(module: str, *names: str) -> Any:
    """One Lazy per name (a tuple of them for several names, the Lazy itself for one)."""
    found = tuple(Lazy(module, name) for name in names)
    return found[0] if len(found) == 1 else found


def resolved(value: Any) -> Any:
    """The object behind a Lazy (anything else as it is; lists and dict values too)."""
    if isinstance(value, list):
        return [resolved(v) for v in value]
    if isinstance(value, dict):
        return {k: resolved(v) for k, v in value.items()}
    return value.resolve() if type(value) is Lazy else value
