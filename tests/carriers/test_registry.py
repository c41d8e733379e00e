"""The carrier registry: every registered kind passes the shared conformance suite, and lookups fail clearly."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from carriers.base import CarrierAdapter, CarrierConfig
from carriers.registry import ADAPTERS, UnknownCarrierKind, carrier_class, carrier_for, kind_choices
from tests.carriers.conformance import CarrierAdapterConformance

HERE = Path(__file__).resolve().parent


def _conformance_kinds() -> set[str]:
    for path in sorted(HERE.glob("test_*.py")):
        importlib.import_module(f"tests.carriers.{path.stem}")
    found: set[str] = set()
    pending = list(CarrierAdapterConformance.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.kind and cls.__name__.startswith("Test"):
            found.add(cls.kind)
    return found


def test_every_registered_carrier_has_a_conformance_subclass() -> None:
    missing = set(ADAPTERS) - _conformance_kinds()

    assert not missing, f"no Test*Conformance(CarrierAdapterConformance) for {sorted(missing)}"


def test_every_kind_is_the_adapters_own() -> None:
    for kind, cls in ADAPTERS.items():
        assert issubclass(cls, CarrierAdapter)
        assert cls.kind == kind


def test_an_unknown_kind_is_refused_by_name() -> None:
    with pytest.raises(UnknownCarrierKind, match="no-such-carrier"):
        carrier_class("no-such-carrier")


def test_carrier_for_builds_the_registered_class() -> None:
    for kind, cls in ADAPTERS.items():
        adapter = carrier_for(kind, CarrierConfig(slug=f"{kind}-test", api_base_url="http://127.0.0.1:9"))
        assert type(adapter) is cls


def test_kind_choices_are_sorted_and_labelled() -> None:
    choices = kind_choices()

    assert [kind for kind, _ in choices] == sorted(ADAPTERS)
    assert all(label for _, label in choices)
