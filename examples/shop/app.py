"""The shop application: a strict bus, the enabled modules, the API.

``uvicorn examples.shop.app:app`` serves ``app``; tests build their own with
``create_app(...)``, one bus per application.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Final

from fastapi import FastAPI

from eventbus import EventBus
from eventbus.fastapi import attach

from . import accounting, api, barcodes, membership
from .events import declare_events
from .store import Shop

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

MODULES: Final[dict[str, Callable[[EventBus, Shop], None]]] = {
    "accounting": accounting.setup,
    "barcodes": barcodes.setup,
    "membership": membership.setup,
}


def create_app(
    modules: Iterable[str] | None = None,
    *,
    shop: Shop | None = None,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> FastAPI:
    """Build the application with these modules (default: ``$SHOP_MODULES``, a
    comma-separated list, else all of them); traced (see ``tracing``) when a
    provider is given or ``$SHOP_TRACING`` is ``1``."""
    if modules is None:
        modules = _modules_from_environment()
    setups = []
    for name in modules:
        if name not in MODULES:
            raise ValueError(f"unknown module {name!r}: choose among {', '.join(MODULES)}")
        setups.append(MODULES[name])
    shop = shop if shop is not None else Shop()
    bus = EventBus("shop", strict=True)
    declare_events(bus)
    for setup in setups:
        setup(bus, shop)
    app = FastAPI(title="eventbus shop example")
    app.state.shop = shop
    attach(app, bus)
    app.include_router(api.router)
    if tracer_provider or meter_provider or os.environ.get("SHOP_TRACING") == "1":
        from .tracing import instrument  # needs the otel extra and its FastAPI instrumentation

        instrument(app, bus, tracer_provider=tracer_provider, meter_provider=meter_provider)
    return app


def _modules_from_environment() -> list[str]:
    value = os.environ.get("SHOP_MODULES")
    if value is None:
        return list(MODULES)
    return [name.strip() for name in value.split(",") if name.strip()]


app = create_app()
