"""Demo products with designed roles (issue 15 item 4's ground truth), chosen without randomness
from the catalogue so the simulator's random streams are untouched:

* **traffic drivers** (引流款), one per category: the SKU (on sale from the start) priced nearest the
  category's lower quartile. They are sold near cost (margin :data:`DRIVER_MARGIN`) and a first
  order's first line prefers its category's driver (:data:`DRIVER_BONUS`, in the basket's
  price-fit error), so they bring in new buyers, who then buy other products;
* **profit makers** (利润款), one per category of margin at least :data:`MIN_CATEGORY_MARGIN`:
  the most popular SKU on sale from the start priced
  between the category's median and upper quartile, given a margin of :data:`PROFIT_MARGIN` and
  :data:`PROFIT_POPULARITY` times its popularity;
* **potential products** (潜力款): the :data:`POTENTIAL_COUNT` launches nearest
  :data:`POTENTIAL_LAUNCH` of the history priced at most their category's median,
  bought :data:`POTENTIAL_POPULARITY` times as often as their draw and browsed
  :data:`POTENTIAL_VIEWS` times as often, so they convert well from few views and grow.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from growthwheel.sim.catalogue import CATEGORIES, Catalogue

DRIVER_MARGIN = 0.08
DRIVER_BONUS = 0.12
PROFIT_MARGIN = 0.80
#: 1: their own (already the category's highest among the dearer half). A pull of 4 made the
#: popularity recommender nearly as good as re-purchase frequency on the demo (tests/recs).
PROFIT_POPULARITY = 1.0
#: Categories whose mean margin is below this (electronics) have no designed profit maker.
MIN_CATEGORY_MARGIN = 0.25
POTENTIAL_COUNT = 4
POTENTIAL_POPULARITY = 3.0
POTENTIAL_VIEWS = 0.05
#: Where in the history the potential products are launched (share of the days).
POTENTIAL_LAUNCH = 0.55


def designate(c: Catalogue, days: int) -> Catalogue:
    """The catalogue of a ``days``-long history with the designed roles applied (``entry_sku`` set
    per category, ``designed`` naming them)."""
    pre = c.launched_day < 0
    drivers: list[int] = []
    makers: list[int] = []
    for k in range(len(CATEGORIES)):
        lo, hi = int(c.category_start[k]), int(c.category_start[k + 1])
        idx = np.arange(lo, hi)[pre[lo:hi]]
        prices = c.price[idx].astype(float)
        drivers.append(int(idx[np.argmin(np.abs(prices - np.quantile(prices, 0.25)))]))
        dear = idx[(prices >= np.median(prices)) & (prices <= np.quantile(prices, 0.75))
                   & (idx != drivers[-1])]
        if CATEGORIES[k].margin >= MIN_CATEGORY_MARGIN:
            makers.append(int(dear[np.argmax(c.popularity[dear])]))
    new = np.flatnonzero(~pre)
    cheap = new[c.price[new] <= np.asarray([np.median(c.price[c.category == k]) for k in c.category[new]])]
    near = np.argsort(np.abs(c.launched_day[cheap] - POTENTIAL_LAUNCH * days), kind="stable")
    potential = [int(i) for i in cheap[near][:POTENTIAL_COUNT]]
    price = c.price.astype(float)
    cost = c.cost.copy()
    cost[drivers] = np.rint(price[drivers] * (1 - DRIVER_MARGIN)).astype(np.int64)
    cost[makers] = np.rint(price[makers] * (1 - PROFIT_MARGIN)).astype(np.int64)
    popularity = c.popularity.copy()
    popularity[makers] *= PROFIT_POPULARITY
    popularity[potential] *= POTENTIAL_POPULARITY
    appeal = c.view_appeal.copy()
    appeal[potential] *= POTENTIAL_VIEWS
    return dataclasses.replace(
        c, cost=cost, popularity=popularity, view_appeal=appeal / appeal.sum(),
        entry_sku=np.asarray(drivers, dtype=np.int64),
        designed={"traffic_driver": drivers, "profit_maker": makers, "potential": potential})


def describe(c: Catalogue) -> dict[str, Any]:
    """The designed roles for ``ground_truth.json``."""
    designed = c.designed or {}
    how = {
        "traffic_driver": f"one per category, priced near its lower quartile, margin {DRIVER_MARGIN}; "
                          f"first orders' first line prefers it (fit bonus {DRIVER_BONUS})",
        "profit_maker": f"one per category of mean margin >= {MIN_CATEGORY_MARGIN}, priced between "
                        f"its median and upper quartile, margin {PROFIT_MARGIN}, "
                        f"popularity x{PROFIT_POPULARITY}",
        "potential": f"the {POTENTIAL_COUNT} launches nearest {POTENTIAL_LAUNCH} of the history "
                     f"priced at most their category's median, popularity x{POTENTIAL_POPULARITY}, "
                     f"views x{POTENTIAL_VIEWS}",
    }
    return {**{role: [c.sku[i] for i in idx] for role, idx in designed.items()}, "how": how}
