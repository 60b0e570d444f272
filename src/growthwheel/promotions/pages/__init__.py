"""Console pages of the promotions domain: promotions and coupons with their budget burn
(membership tiers, members and their points: ``loyalty.pages``, which shares ``common.py``'s form
helpers). By what they serve: ``promotions.py``, ``tryout.py`` (the price-a-cart tryout),
``coupons.py``; ``common.py`` holds what they share.

* ``GET /promotions``: every promotion with its type, layer, schedule and state (draft, scheduled,
  live, paused, ended), budget used against its limit and, for a flash sale (秒杀), stock sold.
* ``GET /promotions/new`` and ``POST /promotions`` (form, CSRF; operators and admins): create and
  schedule a promotion of the main reward types (item percentage / amount off, flash sale with
  stock, 满减 tiers, 每满减, 满件折, free shipping, gift) with its conditions and stacking. The
  form becomes the definition JSON the API takes and goes through the same service
  (:func:`growthwheel.promotions.service.create_promotion`, i.e. ``definition.parse_definition``
  and the pricing core's own checks); a refused field is shown next to it.
* ``GET /promotions/{id}``: definition, schedule, budget and a **price-a-cart tryout** (a ``GET``
  form: a few lines, channel, first order, tier) priced by the pure core
  (:func:`growthwheel.promotions.rules.price_cart`) with this promotion (and optionally every
  other live one): the priced lines, what applied, what did not and why, and the "spend X more"
  nudges. ``POST /promotions/{id}/status`` activates, pauses or ends it; ``POST …/schedule``
  moves its start and end.
* ``GET /coupons``: coupon batches with their burn (codes, issued, redeemed, remaining, discount
  spent against the money budget); ``GET /coupons/new`` and ``POST /coupons`` generate a batch;
  ``GET /coupons/{id}``: the batch, its burn chart (discount spent per day, cumulative, against
  the budget; ``static/promotions.js``), its codes (paginated; codes masked for read-only users)
  and ``GET /coupons/{id}/codes.csv``; ``POST /coupons/{id}/generate`` and ``/issue`` (to
  customers or every member of a saved segment).

Every page needs a signed-in user; every write needs the ``write`` scope (operators, admins; others
get 403), the CSRF token, and is audited by the service it calls. A refused form comes back (200,
like any re-shown form) with each message next to its field. Amounts are typed in major units of the shop's
currency (parsed exactly, :func:`growthwheel.kit.money.parse_major`) and shown with
:func:`growthwheel.web.i18n.format_money`. Visible strings come from ``i18n/<lang>/promotions.json``;
keys chosen here are marked with :func:`k`.
"""

from fastapi import APIRouter

from growthwheel.promotions.pages import coupons, pickers, promotions

router = APIRouter(include_in_schema=False)
router.include_router(pickers.router)  # before /promotions/{id}
router.include_router(promotions.router)
router.include_router(coupons.router)

__all__ = ["coupons", "pickers", "promotions", "router"]
