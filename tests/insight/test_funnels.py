"""Funnels over a hand-built event set on a real DuckDB warehouse, answers worked out by hand.

All times below are UTC wall times as the warehouse stores them; ``event_date`` is set to the same
calendar day (the funnel only uses it to pick which first-step events fall in the date range).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from tests.tiny_warehouse import make_warehouse

from growthwheel.errors import InvalidArgumentError
from growthwheel.insight.funnels import (
    DEFAULT_STEPS,
    FRAME_COLUMNS,
    funnel_entrants,
    funnel_entrants_local,
    funnel_frame,
    funnel_steps,
    identity_links,
    with_actor,
)

START, END = date(2024, 1, 1), date(2024, 1, 31)


def make_events(rows: list[dict[str, Any]]) -> Any:
    """The ``events`` table of an in-memory DuckDB warehouse holding ``rows``."""
    return make_warehouse({"events": rows}).table("events")


_n = 0


def ev(kind: str, at: str, customer: str | None = None, anonymous: str | None = None,
       source: str | None = None, device: str | None = None) -> dict[str, Any]:
    global _n
    _n += 1
    when = datetime.fromisoformat(at)
    return {"event_id": f"e{_n:03d}", "type": kind, "occurred_at": when, "event_date": when.date(),
            "customer_id": customer, "anonymous_id": anonymous, "utm_source": source,
            "device": device}


def shop_events() -> list[dict[str, Any]]:
    global _n
    _n = 0  # event ids e001, e002, ... in the order below
    rows = [
        # c1 browses anonymously on device d1 (came from baidu), then signs in at checkout: the
        # checkout links d1 to c1, so the four steps are one entrant's. 0, 300, 600, 720 s.
        ev("view", "2024-01-02 10:00:00", None, "d1", "baidu", "mobile"),
        ev("add_to_cart", "2024-01-02 10:05:00", None, "d1"),
        ev("checkout", "2024-01-02 10:10:00", "c1", "d1"),
        ev("purchase", "2024-01-02 10:12:00", "c1", "d1"),
        # d2: events out of order. The purchase is stamped before the cart, so it cannot be step
        # 4: d2 reaches checkout (cart at 300 s, checkout at 360 s) and no further.
        ev("view", "2024-01-03 09:00:00", None, "d2", None, "desktop"),
        ev("purchase", "2024-01-03 09:01:00", None, "d2"),
        ev("add_to_cart", "2024-01-03 09:05:00", None, "d2"),
        ev("checkout", "2024-01-03 09:06:00", None, "d2"),
        # d3: the cart comes 14 days and 1 second after the view: outside the window.
        ev("view", "2024-01-04 12:00:00", None, "d3", "douyin", "mobile"),
        ev("add_to_cart", "2024-01-18 12:00:01", None, "d3"),
        # d4: the cart comes exactly 14 days after the view: inside (the window is inclusive).
        ev("view", "2024-01-05 00:00:00", None, "d4", "douyin", "mobile"),
        ev("add_to_cart", "2024-01-19 00:00:00", None, "d4"),
        # d5 enters twice. The first attempt (douyin, 01-06 08:00) has until 01-20 08:00: the cart
        # at 08:10 is too late, so it reaches step 1. The second attempt (baidu, 01-20 08:00)
        # reaches checkout (cart 600 s, checkout 86400 s): that one counts, with its baidu.
        ev("view", "2024-01-06 08:00:00", None, "d5", "douyin", "desktop"),
        ev("view", "2024-01-20 08:00:00", None, "d5", "baidu", "desktop"),
        ev("add_to_cart", "2024-01-20 08:10:00", None, "d5"),
        ev("checkout", "2024-01-21 08:00:00", None, "d5"),
        # c6, signed in: checkout and purchase share a timestamp, which is in order. 0/60/120/120.
        ev("view", "2024-01-07 10:00:00", "c6", None, None, "mobile"),
        ev("add_to_cart", "2024-01-07 10:01:00", "c6"),
        ev("checkout", "2024-01-07 10:02:00", "c6"),
        ev("purchase", "2024-01-07 10:02:00", "c6"),
        # d7 viewed before the range starts: not an entrant, whatever happens next.
        ev("view", "2023-12-31 23:00:00", None, "d7", "douyin"),
        ev("add_to_cart", "2024-01-01 00:10:00", None, "d7"),
        # An event with no id at all is nobody's; a search is not a step.
        ev("view", "2024-01-08 10:00:00"),
        ev("search", "2024-01-08 10:00:00", "c6"),
    ]
    return rows


def test_identity_links_anonymous_browsing_to_the_customer() -> None:
    events = make_events(shop_events())
    df = with_actor(events).execute().set_index("event_id")
    assert df.loc["e001", "actor"] == "c1"  # anonymous d1, linked by the checkout
    assert df.loc["e005", "actor"] == "anon:d2"
    assert df.loc["e017", "actor"] == "c6"


def test_default_funnel_worked_out_by_hand() -> None:
    frame = funnel_frame(make_events(shop_events()), start=START, end=END)
    assert list(frame.columns) == list(FRAME_COLUMNS)
    rows = frame.to_dict(orient="records")
    assert [r["event"] for r in rows] == list(DEFAULT_STEPS)
    # Entrants: c1, d2, d3, d4, d5, c6 (six). Cart: all but d3 (five). Checkout: c1, d2, d5, c6.
    # Purchase: c1 and c6.
    assert [r["entrants"] for r in rows] == [6, 5, 4, 2]
    assert [r["conversion_from_previous"] for r in rows] == [None, 5 / 6, 4 / 5, 2 / 4]
    assert [r["conversion_from_first"] for r in rows] == [1.0, 5 / 6, 4 / 6, 2 / 6]
    assert [r["drop_off"] for r in rows] == [None, 1, 1, 2]
    assert [r["drop_off_rate"] for r in rows] == [None, 1 / 6, 1 / 5, 2 / 4]
    # Seconds from the first step:
    #   cart:     c1 300, d2 300, d4 1209600, d5 600, c6 60     → median 300
    #   checkout: c1 600, d2 360, d5 86400, c6 120              → median (360 + 600) / 2 = 480
    #   purchase: c1 720, c6 120                                 → median 420 (time to convert)
    assert [r["median_seconds_from_first"] for r in rows] == [0.0, 300.0, 480.0, 420.0]
    # From the previous step: checkout c1 300, d2 60, d5 85800, c6 60 → 180; purchase 120, 0 → 60.
    assert [r["median_seconds_from_previous"] for r in rows] == [None, 300.0, 180.0, 60.0]


def test_best_attempt_per_entrant() -> None:
    got = funnel_entrants(make_events(shop_events()), start=START, end=END,
                          breakdown="utm_source").execute().set_index("actor")
    assert got["steps_reached"].to_dict() == {
        "c1": 4, "anon:d2": 3, "anon:d3": 1, "anon:d4": 2, "anon:d5": 3, "c6": 4}
    assert str(got.loc["anon:d5", "at_1"]) == "2024-01-20 08:00:00"
    assert got.loc["anon:d5", "utm_source"] == "baidu"


def test_breakdown_by_entry_source_and_device() -> None:
    events = make_events(shop_events())
    frame = funnel_frame(events, start=START, end=END, breakdown="utm_source")
    by = {(r["utm_source"], r["step"]): r["entrants"] for r in frame.to_dict(orient="records")}
    # baidu: c1 (4 steps) and d5 (second attempt, 3 steps); douyin: d3 (1) and d4 (2);
    # (none): d2 (3) and c6 (4). Two entrants each: sorted by name.
    assert by == {
        ("(none)", 1): 2, ("(none)", 2): 2, ("(none)", 3): 2, ("(none)", 4): 1,
        ("baidu", 1): 2, ("baidu", 2): 2, ("baidu", 3): 2, ("baidu", 4): 1,
        ("douyin", 1): 2, ("douyin", 2): 1, ("douyin", 3): 0, ("douyin", 4): 0,
    }
    assert list(frame["utm_source"].drop_duplicates()) == ["(none)", "baidu", "douyin"]
    douyin = frame[frame["utm_source"] == "douyin"].to_dict(orient="records")
    assert douyin[2]["conversion_from_previous"] == 0.0
    assert douyin[3]["conversion_from_previous"] is None
    devices = funnel_frame(events, start=START, end=END, breakdown="device")
    first = {r["device"]: r["entrants"] for r in devices.to_dict(orient="records") if r["step"] == 1}
    # mobile: c1, d3, d4, c6; desktop: d2, d5.
    assert first == {"mobile": 4, "desktop": 2}


def test_window_range_and_custom_steps() -> None:
    events = make_events(shop_events())
    # A one-hour window: d4 (14 days) and d5 (checkout a day later) stop earlier, d3 too.
    short = funnel_frame(events, start=START, end=END, window=timedelta(hours=1))
    assert list(short["entrants"]) == [6, 4, 3, 2]  # cart: c1 d2 d5 c6; checkout: c1 d2 c6
    # Only first steps on Jan 2-3 count: c1 and d2.
    narrow = funnel_frame(events, start=date(2024, 1, 2), end=date(2024, 1, 3))
    assert list(narrow["entrants"]) == [2, 2, 2, 1]
    # Two steps: view then purchase. d2's purchase (09:01) follows its view (09:00) now.
    two = funnel_frame(events, ["view", "purchase"], start=START, end=END)
    assert list(two["entrants"]) == [6, 3]


def test_a_step_repeating_an_earlier_event_type_needs_a_later_event() -> None:
    events = make_events([
        ev("view", "2024-01-02 10:00:00", "x"), ev("purchase", "2024-01-02 10:05:00", "x"),
        ev("view", "2024-01-02 10:00:00", "y"), ev("view", "2024-01-02 10:01:00", "y"),
        ev("purchase", "2024-01-02 10:05:00", "y"),
    ])
    # x viewed once: the same view cannot be steps 1 and 2. y viewed twice and bought.
    got = funnel_entrants(events, ["view", "view", "purchase"]).execute().set_index("actor")
    assert got["steps_reached"].to_dict() == {"x": 1, "y": 3}


def test_bad_arguments_and_no_events() -> None:
    events = make_events(shop_events())
    with pytest.raises(InvalidArgumentError):
        funnel_frame(events, ["view"])
    with pytest.raises(InvalidArgumentError):
        funnel_frame(events, window=timedelta(0))
    with pytest.raises(InvalidArgumentError):
        funnel_frame(events, breakdown="city")
    # Nobody entered: the steps are there with zero entrants and no rates (no values to break
    # down by, so a breakdown has no rows).
    nobody = funnel_frame(events, start=date(2025, 1, 1))
    assert list(nobody["entrants"]) == [0, 0, 0, 0]
    assert nobody["conversion_from_first"].isna().all()
    assert funnel_frame(events, start=date(2025, 1, 1), breakdown="device").empty
    # Ranges and windows at the calendar's ends are no bound at all (no overflow).
    wide = funnel_frame(events, start=date(1, 1, 1), end=date(9999, 12, 31),
                        window=timedelta(days=999_999_999))
    assert int(wide["entrants"].iloc[0]) == 7


def random_events(seed: int, people: int = 60) -> list[dict[str, Any]]:
    """Events of ``people`` visitors over ten days: anonymous browsing, sign-ins that link a
    device to a customer, steps out of order, repeated steps and ties in time."""
    import random

    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    kinds = ["view", "view", "add_to_cart", "checkout", "purchase", "search"]
    for p in range(people):
        customer = f"c{p % 45}" if rng.random() < 0.5 else None
        device = f"d{p}"
        at = datetime.fromisoformat("2024-01-01 00:00:00") + timedelta(seconds=rng.randrange(10 * 86400))
        for _ in range(rng.randrange(1, 12)):
            at += timedelta(seconds=rng.choice([0, 0, 30, 600, 3600, 86400, 3 * 86400]))
            signed_in = customer if rng.random() < 0.4 else None
            rows.append(ev(rng.choice(kinds), at.isoformat(sep=" "), signed_in, device,
                           rng.choice(["baidu", "douyin", None]), rng.choice(["mobile", "desktop"])))
    return rows


@pytest.mark.parametrize("seed", [7])
def test_in_memory_matching_equals_the_warehouse_query(seed: int) -> None:
    """funnel_frame on DuckDB matches in memory (funnel_entrants_local); it must give exactly what
    the Ibis expression (the path other engines run) gives, entrant by entrant."""
    events = make_events(random_events(seed))
    cases: list[dict[str, Any]] = [
        {},
        {"start": date(2024, 1, 3), "end": date(2024, 1, 6), "window": timedelta(days=2)},
        {"steps": ["view", "view", "purchase"], "window": timedelta(hours=6)},
        {"steps": ["add_to_cart", "view", "checkout"], "breakdown": "utm_source"},
        {"breakdown": "device", "end": date(2024, 1, 5)},
    ]
    for case in cases:
        steps = case.pop("steps", DEFAULT_STEPS)
        local = funnel_entrants_local(events, steps, **case).set_index("actor").sort_index()
        remote = funnel_entrants(events, steps, **case).execute().set_index("actor").sort_index()
        # Links computed once (as the page remembers them per warehouse version): the same rows.
        linked = funnel_entrants_local(events, steps, links=identity_links(events), **case)
        pd.testing.assert_frame_equal(linked.set_index("actor").sort_index(), local)
        assert len(remote) > 5
        assert local.index.tolist() == remote.index.tolist()
        assert local["steps_reached"].tolist() == remote["steps_reached"].tolist()
        for k in range(1, len(steps) + 1):
            a = pd.to_datetime(local[f"at_{k}"]).tolist()
            b = pd.to_datetime(remote[f"at_{k}"]).tolist()
            assert [x if not pd.isna(x) else None for x in a] == [
                x if not pd.isna(x) else None for x in b
            ], (case, k)
        if "breakdown" in case:
            assert local[case["breakdown"]].tolist() == remote[case["breakdown"]].tolist()
        mine = funnel_frame(events, steps, **case)
        theirs = funnel_steps(funnel_entrants(events, steps, **case), len(steps),
                              breakdown=case.get("breakdown")).execute()
        assert int(mine["entrants"].sum()) == int(theirs["entrants"].sum())
        assert sorted(mine["median_seconds_from_first"].dropna().astype(float).tolist()) == sorted(
            theirs["median_seconds_from_first"].dropna().astype(float).tolist()
        )


def test_links_given_or_not_and_without_any_link() -> None:
    """The identity links the page passes in give what the function finds itself; with no event
    carrying both ids every anonymous visitor is their own entrant (``anon:<id>``)."""
    events = make_events(shop_events())
    links = identity_links(events)
    assert links.to_pylist() == [{"anonymous_id": "d1", "customer_id": "c1"}]
    given = funnel_frame(events, start=START, end=END, links=links)
    assert given.equals(funnel_frame(events, start=START, end=END))
    assert list(given["entrants"]) == [6, 5, 4, 2]
    alone = make_events([r for r in shop_events() if r["customer_id"] is None])
    assert identity_links(alone).num_rows == 0
    people = funnel_entrants_local(alone, start=START, end=END)
    assert sorted(people["actor"]) == ["anon:d1", "anon:d2", "anon:d3", "anon:d4", "anon:d5"]
    assert people.set_index("actor").loc["anon:d1", "steps_reached"] == 2
