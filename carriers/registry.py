"""The typed registry of carrier adapters by kind: grep and mypy can follow it, string imports cannot."""

from __future__ import annotations

from carriers.base import CarrierAdapter, CarrierConfig
from carriers.dpd import DpdAdapter
from carriers.fedex import FedExAdapter
from carriers.gls import GlsAdapter
from carriers.packeta import PacketaAdapter
from carriers.usps import USPSAdapter

ADAPTERS: dict[str, type[CarrierAdapter]] = {
    "dpd": DpdAdapter,
    "fedex": FedExAdapter,
    "gls": GlsAdapter,
    "packeta": PacketaAdapter,
    "usps": USPSAdapter,
}


class UnknownCarrierKind(KeyError):
    pass


def carrier_class(kind: str) -> type[CarrierAdapter]:
    try:
        return ADAPTERS[kind]
    except KeyError:
        raise UnknownCarrierKind(f"no adapter for carrier kind {kind!r}; known: {sorted(ADAPTERS)}") from None


def carrier_for(kind: str, config: CarrierConfig) -> CarrierAdapter:
    return carrier_class(kind)(config)


def kind_choices() -> list[tuple[str, str]]:
    return [(kind, cls.label) for kind, cls in sorted(ADAPTERS.items())]
