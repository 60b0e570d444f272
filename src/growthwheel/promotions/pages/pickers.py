"""Search pickers for the promotion, coupon and tryout forms: ``GET /promotions/picker`` answers
``<option>`` elements for an HTML ``<datalist>`` (HTMX swaps them in as the operator types), so
SKUs and categories are chosen from the shop's catalogue instead of typed from memory.

``kind=sku`` searches the products (SKU or name contains the words, case-insensitive) and each
option carries the product's name, category and list price (``data-price``, in major units, which
the tryout cart copies into its price field); ``kind=category`` searches the categories with the
number of products in each. At most :data:`MAX_OPTIONS` options, best matches first (a prefix of
the SKU or category before other matches). An empty search lists the first ones alphabetically.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from growthwheel.api.deps import PageUser
from growthwheel.api.warehouse import warehouse
from growthwheel.kit.money import major_text
from growthwheel.promotions.pages.common import _shop
from growthwheel.web.pages import page_translator

router = APIRouter(include_in_schema=False)

#: Most options one search answers.
MAX_OPTIONS = 30


def search_products(backend: Any, words: str, limit: int = MAX_OPTIONS) -> list[dict[str, Any]]:
    """Products whose SKU or name contains ``words`` (case-insensitive): ``sku``, ``name``,
    ``category`` and ``price`` (minor units), SKU prefix matches first, then by SKU."""
    products = backend.table("products")
    text = words.strip().lower()
    found = products
    if text:
        found = products.filter(products.sku.lower().contains(text)
                                | products.name.fill_null("").lower().contains(text))
    prefix = found.sku.lower().startswith(text) if text else found.sku.isnull()
    found = found.mutate(_first=prefix.ifelse(0, 1)).order_by(["_first", "sku"]).limit(limit)
    rows = found.select("sku", "name", "category", "price").to_pyarrow().to_pylist()
    return [dict(r) for r in rows]


def search_categories(backend: Any, words: str, limit: int = MAX_OPTIONS) -> list[dict[str, Any]]:
    """Categories containing ``words`` (case-insensitive) with their number of products, prefix
    matches first, then by name."""
    products = backend.table("products")
    named = products.filter(products.category.notnull() & (products.category != ""))
    text = words.strip().lower()
    if text:
        named = named.filter(named.category.lower().contains(text))
    counted = named.group_by("category").aggregate(products=named.count())
    prefix = counted.category.lower().startswith(text) if text else counted.category.isnull()
    counted = counted.mutate(_first=prefix.ifelse(0, 1)).order_by(["_first", "category"]).limit(limit)
    return [dict(r) for r in counted.select("category", "products").to_pyarrow().to_pylist()]


@router.get("/promotions/picker", response_class=HTMLResponse)
def picker(
    request: Request,
    user: PageUser,
    kind: Annotated[str, Query(pattern="^(sku|category)$")] = "sku",
    q: Annotated[str, Query(max_length=100)] = "",
) -> HTMLResponse:
    """``<option>`` elements (for a ``<datalist>``) of the products or categories matching ``q``."""
    t = page_translator(request)
    shop = _shop(request)
    with warehouse(request).read() as backend:
        if kind == "sku":
            options = []
            for p in search_products(backend, q):
                price = p["price"]
                label = " · ".join(str(x) for x in (
                    p["name"], p["category"],
                    None if price is None else shop.money(int(price)),
                ) if x)
                options.append(Markup(
                    '<option value="{}" data-price="{}" data-category="{}">{}</option>'
                ).format(p["sku"], "" if price is None else major_text(int(price), shop.exponent),
                         p["category"] or "", label))
        else:
            options = [
                Markup('<option value="{}">{}</option>').format(
                    c["category"], t("promotions.picker.products", n=int(c["products"])))
                for c in search_categories(backend, q)
            ]
    return HTMLResponse("".join(options))
