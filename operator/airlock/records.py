"""Records: the core's value classes, slotted, optionally frozen, compared by their fields.

Findings, verdicts, the views of a workload and the documents of a scan are what
``@dataclass(slots=True)`` makes, built without the :mod:`dataclasses` module. That module
imports :mod:`inspect` (and with it ``ast``, ``dis`` and ``tokenize``) and compiles up to seven
methods per class: about 30 ms of ``airlock scan``'s start-up for the 34 classes it loads, more
than the scan of a small file. A record compiles its ``__init__`` (slots set through their
descriptors), ``__eq__`` and ``__hash__`` in one ``exec``; ``repr`` and pickling (one constructor
call with every field, which a parallel scan's workers hand back by the thousand) are shared
functions reading the fields through one :func:`operator.attrgetter`.

Use it as the dataclass decorator it stands for (type checkers read it as one)::

    @record(frozen=True)
    class Hit:
        path: str
        message: str
        refs: tuple[str, ...] = ()
        seen: set[str] = field(default_factory=set)

What it leaves out: inheritance between records, ``ClassVar`` annotations, ``__post_init__``,
keyword-only and ``init=False`` fields, ordering; the decorator refuses a class that asks for them.
Other modules of Airlock (settings, the controller's state) keep :mod:`dataclasses`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast, dataclass_transform, overload

from airlock.compilecache import code

__all__ = ["field", "fields", "record", "replace"]

_T = TypeVar("_T")
_MISSING: Any = type("_Missing", (), {"__repr__": lambda self: "MISSING", "__slots__": ()})()


class _Field:
    __slots__ = ("compare", "default", "factory", "repr")

    def __init__(self, default: Any, factory: Any, repr: bool, compare: bool) -> None:
        self.default, self.factory, self.repr, self.compare = default, factory, repr, compare


def field(
    *,
    default: Any = _MISSING,
    default_factory: Callable[[], Any] | None = None,
    repr: bool = True,
    compare: bool = True,
) -> Any:
    """A field's default (or a factory called for each new record), and whether ``repr`` shows
    it and equality and hashing read it."""
    if default is not _MISSING and default_factory is not None:
        raise ValueError("a field takes default or default_factory, not both")
    return _Field(default, _MISSING if default_factory is None else default_factory, repr, compare)


@overload
def record(cls: type[_T], /) -> type[_T]: ...
@overload
def record(*, frozen: bool = False, eq: bool = True) -> Callable[[type[_T]], type[_T]]: ...


@dataclass_transform(field_specifiers=(field,))
def record(
    cls: type[_T] | None = None, /, *, frozen: bool = False, eq: bool = True
) -> type[_T] | Callable[[type[_T]], type[_T]]:
    """Make ``cls`` a record (see the module's documentation)."""

    def wrap(c: type[_T]) -> type[_T]:
        return _build(c, frozen=frozen, eq=eq)

    return wrap if cls is None else wrap(cls)


def fields(obj: Any) -> tuple[str, ...]:
    """The field names of a record class or instance, in declaration order."""
    names: tuple[str, ...] | None = getattr(obj, "__record_fields__", None)
    if names is None:
        raise TypeError(f"{obj!r} is not a record")
    return names


def replace(obj: _T, /, **changes: Any) -> _T:
    """A copy of the record ``obj`` with ``changes`` to some of its fields."""
    names = fields(obj)
    unknown = changes.keys() - set(names)
    if unknown:
        raise TypeError(f"{type(obj).__qualname__} has no field {sorted(unknown)[0]!r}")
    values = [changes[n] if n in changes else getattr(obj, n) for n in names]
    return type(obj)(*values)


# -- building a record class ----------------------------------------------------------------


def _build(cls: type[_T], *, frozen: bool, eq: bool) -> type[_T]:
    if cls.__bases__ != (object,):
        raise TypeError(f"record {cls.__qualname__}: records do not inherit")
    if "__post_init__" in cls.__dict__:
        raise TypeError(f"record {cls.__qualname__}: __post_init__ is not supported")
    # the class's own annotations, as written (strings); not inspect.get_annotations: importing
    # inspect is what this module avoids
    annotations: Mapping[str, Any] = cls.__dict__.get("__annotations__", {})  # noqa: RUF063
    specs: list[tuple[str, _Field]] = []
    for name, note in annotations.items():
        if isinstance(note, str) and note.replace("typing.", "").startswith("ClassVar"):
            raise TypeError(f"record {cls.__qualname__}: ClassVar {name} is not supported")
        value = cls.__dict__.get(name, _MISSING)
        spec = value if isinstance(value, _Field) else _Field(value, _MISSING, True, True)
        if spec.default is not _MISSING and type(spec.default).__hash__ is None:
            raise ValueError(  # as dataclasses: one list shared by every record is a bug
                f"record {cls.__qualname__}: mutable default for {name}, use default_factory"
            )
        if specs and _required(spec) and not _required(specs[-1][1]):
            raise TypeError(
                f"record {cls.__qualname__}: field {name} without a default follows one with it"
            )
        specs.append((name, spec))
    names = tuple(name for name, _ in specs)
    namespace = {k: v for k, v in cls.__dict__.items() if k not in names}
    for k in ("__dict__", "__weakref__"):
        namespace.pop(k, None)
    for value in namespace.values():
        code = getattr(value, "__code__", None)
        if code is not None and "__class__" in code.co_freevars:
            raise TypeError(f"record {cls.__qualname__}: super() in a method is not supported")
    namespace["__slots__"] = names
    namespace["__record_fields__"] = names
    namespace["__match_args__"] = names
    meta: Any = type(cls)
    new: Any = meta(cls.__name__, cls.__bases__, namespace)
    compared = tuple(n for n, s in specs if s.compare) if eq else None
    methods = _methods(new, specs, frozen=frozen, compared=compared)
    new.__init__ = methods["__init__"]
    shown = tuple(n for n, s in specs if s.repr)
    new.__record_shown__ = operator.attrgetter(*shown) if shown else _nothing
    new.__record_shown_names__ = shown
    if "__repr__" not in cls.__dict__:
        new.__repr__ = _repr
    if "__reduce__" not in cls.__dict__:
        new.__reduce__ = _reduce
    new.__record_all__ = operator.attrgetter(*names) if names else _nothing
    if eq:
        if "__eq__" not in cls.__dict__:
            new.__eq__ = methods["__eq__"]
        # Python sets __hash__ to None in a class body that defines __eq__: not an explicit one
        own_hash = cls.__dict__.get("__hash__", _MISSING)
        if own_hash is _MISSING or (own_hash is None and "__eq__" in cls.__dict__):
            new.__hash__ = methods["__hash__"] if frozen else None
    if frozen:
        new.__setattr__ = _frozen_set
        new.__delattr__ = _frozen_del
    return cast("type[_T]", new)


def _required(spec: _Field) -> bool:
    return spec.default is _MISSING and spec.factory is _MISSING


def _nothing(obj: object) -> tuple[()]:
    return ()


def _methods(
    cls: type, specs: list[tuple[str, _Field]], *, frozen: bool, compared: tuple[str, ...] | None
) -> dict[str, Any]:
    """``__init__`` (and ``__eq__``, ``__hash__`` over ``compared``), compiled from source in
    one go: as fast as hand-written ones."""
    env: dict[str, Any] = {"MISSING": _MISSING}
    params, body = ["self"], []
    for i, (name, spec) in enumerate(specs):
        if spec.factory is not _MISSING:
            env[f"_factory{i}"] = spec.factory
            params.append(f"{name}=MISSING")
            value = f"_factory{i}() if {name} is MISSING else {name}"
        elif spec.default is not _MISSING:
            env[f"_default{i}"] = spec.default
            params.append(f"{name}=_default{i}")
            value = name
        else:
            params.append(name)
            value = name
        if frozen:
            env[f"_set{i}"] = cls.__dict__[name].__set__  # the slot itself, past __setattr__
            body.append(f"    _set{i}(self, {value})")
        else:
            body.append(f"    self.{name} = {value}")
    lines = [f"def __init__({', '.join(params)}):", *(body or ["    pass"])]
    if compared is not None:
        mine = "".join(f"self.{n}," for n in compared)
        theirs = "".join(f"other.{n}," for n in compared)
        lines += [
            "def __eq__(self, other):",
            "    if other.__class__ is self.__class__:",
            f"        return ({mine}) == ({theirs})",
            "    return NotImplemented",
            "def __hash__(self):",
            f"    return hash(({mine}))",
        ]
    # compiled once and kept between runs (the source depends only on the fields)
    exec(code("\n".join(lines), f"<record {cls.__qualname__}>"), env)  # noqa: S102 - built here
    for name in ("__init__", "__eq__", "__hash__"):
        if name in env:
            env[name].__qualname__ = f"{cls.__qualname__}.{name}"
    return env


def _repr(self: Any) -> str:
    cls = type(self)
    names = cls.__record_shown_names__
    values = cls.__record_shown__(self)
    if len(names) == 1:
        values = (values,)
    inner = ", ".join(f"{n}={v!r}" for n, v in zip(names, values, strict=True))
    return f"{cls.__qualname__}({inner})"


def _reduce(self: Any) -> tuple[type, tuple[Any, ...]]:
    cls = type(self)
    values = cls.__record_all__(self)
    return cls, (values if len(cls.__record_fields__) != 1 else (values,))


def _frozen_set(self: Any, name: str, value: Any) -> None:
    raise AttributeError(f"cannot assign to field {name!r} of a frozen record")


def _frozen_del(self: Any, name: str) -> None:
    raise AttributeError(f"cannot delete field {name!r} of a frozen record")
