"""A cheaper ``__init__`` for the frozen, slotted records built per beat and per chunk.

A frozen dataclass's generated ``__init__`` stores every field through
``object.__setattr__`` (its own ``__setattr__`` refuses), a call by name per
field: a five-field ``Beat`` took about 3 us to build, and a service tick
builds several records per device (the chunk, its beats twice, quality
windows, the pipeline's and the monitor's results). :func:`quick_init`
replaces that ``__init__`` with one that stores each field through its slot's
own descriptor, the same store without the lookup, about a third of the cost.
Everything else stays the dataclass's: the same signature and defaults, the
same ``__post_init__`` checks, still frozen (``__setattr__`` still raises).
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar

T = TypeVar("T")


def quick_init(cls: type[T]) -> type[T]:
    """Class decorator, applied after ``@dataclass(frozen=True, slots=True)``."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"quick_init needs a frozen, slotted dataclass, not {cls.__name__}.")
    names, args = [], []
    env: dict[str, object] = {}
    for f in dataclasses.fields(cls):
        if not f.init or f.kw_only or f.default_factory is not dataclasses.MISSING:
            # Not needed by the records it serves; the generated __init__ handles them.
            raise TypeError(f"quick_init cannot build field {cls.__name__}.{f.name}.")
        env[f"_set_{f.name}"] = cls.__dict__[f.name].__set__      # the slot's descriptor
        if f.default is dataclasses.MISSING:
            args.append(f.name)
        else:
            env[f"_default_{f.name}"] = f.default
            args.append(f"{f.name}=_default_{f.name}")
        names.append(f.name)
    body = [f"    _set_{n}(self, {n})" for n in names]
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    source = f"def __init__(self, {', '.join(args)}):\n" + "\n".join(body or ["    pass"])
    exec(source, env)                     # as dataclasses builds its own __init__
    init = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"           # type: ignore[attr-defined]
    init.__doc__ = cls.__init__.__doc__                           # type: ignore[misc]
    cls.__init__ = init                                           # type: ignore[misc]
    return cls


__all__ = ["quick_init"]
