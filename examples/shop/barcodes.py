"""Barcodes: an EAN-13 code and its picture for every imported article."""

from __future__ import annotations

import asyncio
import zlib

from eventbus import Event, EventBus

from .store import Shop

OWNER = "barcodes"


def setup(bus: EventBus, shop: Shop) -> None:
    """Subscribe the barcodes module's handlers."""

    @bus.on("article.imported", owner=OWNER)
    async def generate(event: Event) -> str:
        sku = event["sku"]
        code = ean13(sku)
        # Rendering is CPU work: keep it off the event loop.
        shop.barcode_images[sku] = await asyncio.to_thread(render_svg, code)
        shop.barcodes[sku] = code
        await bus.emit("barcode.generated", sku=sku, barcode=code)
        return code


def ean13(sku: str) -> str:
    """A stable in-store EAN-13 code (prefix 200) for a SKU."""
    body = f"200{zlib.crc32(sku.encode()) % 10**9:09d}"
    total = sum(int(digit) * (3 if index % 2 else 1) for index, digit in enumerate(body))
    return body + str(-total % 10)


def render_svg(code: str) -> str:
    """A (very) simplified barcode picture: one bar per set bit of each digit."""
    bars = "".join(
        f'<rect x="{4 * index + bit}" width="1" height="40"/>'
        for index, digit in enumerate(code)
        for bit in range(4)
        if int(digit) >> bit & 1
    )
    return f'<svg xmlns="http://www.w3.org/2000/svg" data-code="{code}">{bars}</svg>'
