"""airlock.records: what the core's value classes rely on, held to what dataclasses do."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

import pytest
from airlock.records import field, fields, record, replace


@record(frozen=True)
class Point:
    x: int
    y: int = 0
    tags: tuple[str, ...] = ()
    note: str = field(default="", repr=False, compare=False)


@record
class Bag:
    name: str
    items: list[int] = field(default_factory=list)


@dataclasses.dataclass(frozen=True, slots=True)
class DataPoint:
    x: int
    y: int = 0
    tags: tuple[str, ...] = ()
    note: str = dataclasses.field(default="", repr=False, compare=False)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((1,), {}), ((1, 2), {}), ((1,), {"tags": ("a",)}), ((), {"x": 3, "note": "n"})],
)
def test_a_frozen_record_behaves_as_the_frozen_dataclass(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    mine, theirs = Point(*args, **kwargs), DataPoint(*args, **kwargs)
    assert repr(mine) == repr(theirs).replace("DataPoint", "Point")
    assert hash(mine) == hash(theirs)
    assert (mine.x, mine.y, mine.tags, mine.note) == (theirs.x, theirs.y, theirs.tags, theirs.note)
    assert fields(mine) == tuple(f.name for f in dataclasses.fields(theirs)) == fields(Point)


def test_equality_and_hash_follow_the_compared_fields() -> None:
    assert Point(1, 2) == Point(1, 2, note="other")  # note: compare=False
    assert hash(Point(1, 2)) == hash(Point(1, 2, note="other"))
    assert Point(1, 2) != Point(2, 1)
    assert Point(1) != DataPoint(1)  # another class is never equal
    assert len({Point(1), Point(1), Point(2)}) == 2


def test_frozen_fields_cannot_be_assigned_or_deleted() -> None:
    p = Point(1)
    with pytest.raises(AttributeError, match="frozen record"):
        p.x = 2  # type: ignore[misc]
    with pytest.raises(AttributeError, match="frozen record"):
        del p.y  # type: ignore[misc]
    with pytest.raises(AttributeError):
        p.other = 1  # type: ignore[attr-defined]  # slotted: no new attributes either
    assert p.x == 1


def test_a_mutable_record_takes_assignments_is_unhashable_and_has_fresh_defaults() -> None:
    a, b = Bag("a"), Bag("b")
    a.items.append(1)
    assert b.items == []  # the factory ran once per record
    a.name = "renamed"
    assert a == Bag("renamed", [1])
    with pytest.raises(TypeError):
        hash(a)
    assert not hasattr(a, "__dict__")


def test_records_pickle_copy_and_replace_as_their_constructor() -> None:
    p = Point(1, 2, ("t",), note="n")
    for again in (pickle.loads(pickle.dumps(p)), copy.copy(p), copy.deepcopy(p)):  # noqa: S301
        assert again == p
        assert again.note == "n"
    moved = replace(p, y=5)
    assert (moved.x, moved.y, moved.tags, moved.note) == (1, 5, ("t",), "n")
    assert p.y == 2
    with pytest.raises(TypeError, match="no field 'z'"):
        replace(p, z=1)
    assert pickle.loads(pickle.dumps(Bag("b", [1]))) == Bag("b", [1])  # noqa: S301


def test_records_match_positionally() -> None:
    match Point(1, 2):
        case Point(x, y):
            assert (x, y) == (1, 2)
        case _:
            pytest.fail("no positional match")


def test_constructor_errors_are_pythons() -> None:
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Point(1, 2, (), "n", "extra")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Point(1, z=3)  # type: ignore[call-arg]


def test_what_records_do_not_support_is_refused_at_definition() -> None:
    with pytest.raises(TypeError, match="without a default follows"):

        @record
        class Order:
            a: int = 0
            b: int  # type: ignore[misc]

    with pytest.raises(TypeError, match="do not inherit"):

        @record
        class Child(Point):  # type: ignore[misc]
            z: int = 0

    with pytest.raises(TypeError, match="__post_init__"):

        @record
        class Post:
            a: int

            def __post_init__(self) -> None: ...

    with pytest.raises(TypeError, match="super"):

        @record
        class Super:
            a: int

            def __repr__(self) -> str:
                return super().__repr__()

    with pytest.raises(ValueError, match="mutable default"):

        @record
        class Shared:
            items: list[int] = []  # noqa: RUF012

    with pytest.raises(ValueError, match="not both"):
        field(default=1, default_factory=int)
    with pytest.raises(TypeError, match="not a record"):
        fields(DataPoint)


def test_methods_properties_and_own_repr_are_kept() -> None:
    @record(frozen=True)
    class Named:
        first: str
        last: str

        @property
        def full(self) -> str:
            return f"{self.first} {self.last}"

        def __repr__(self) -> str:
            return f"<{self.full}>"

    n = Named("Ada", "Lovelace")
    assert n.full == "Ada Lovelace"
    assert repr(n) == "<Ada Lovelace>"
    assert Named.__qualname__.endswith("Named")
    assert Named.__init__.__qualname__.endswith("Named.__init__")


def test_a_frozen_record_with_its_own_equality_is_hashed_by_its_fields() -> None:
    """As with dataclasses: defining ``__eq__`` in a class body sets ``__hash__`` to None, which
    is not a hash of its own."""

    @record(frozen=True)
    class Word:  # noqa: PLW1641 - the record writes __hash__
        text: str

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Word) and self.text.lower() == other.text.lower()

    assert Word("a") == Word("A")
    assert hash(Word("a")) == hash(Word("a"))
