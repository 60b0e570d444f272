"""The funnel page's computation (``funnel_with_stops`` on DuckDB: actors as integer codes, no
entrant frame) gives exactly what the entrant-by-entrant path gives: the same funnel frame
(counts, rates, medians) and the same "stopped here" counts of known customers, with anonymous
visitors, linked anonymous ids and repeated step types."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from tests.insight.test_funnels import make_events, random_events

from growthwheel.insight.funnels import (
    ANONYMOUS_PREFIX,
    DEFAULT_STEPS,
    funnel_entrants_local,
    funnel_frame,
    funnel_with_stops,
    identity_links,
)

CASES: list[dict[str, Any]] = [
    {},
    {"start": date(2024, 1, 3), "end": date(2024, 1, 6), "window": timedelta(days=2)},
    {"steps": ["view", "view", "purchase"], "window": timedelta(hours=6)},
    {"steps": ["add_to_cart", "view", "checkout"], "end": date(2024, 1, 5)},
    {"steps": ["search", "purchase"], "start": date(2030, 1, 1)},  # nobody enters
]


@pytest.mark.parametrize("seed", [3, 11])
def test_the_page_computation_equals_the_entrant_path(seed: int) -> None:
    events = make_events(random_events(seed, people=80))
    links = identity_links(events)
    for case in CASES:
        case = dict(case)
        steps = case.pop("steps", list(DEFAULT_STEPS))
        people = funnel_entrants_local(events, steps, links=links, **case)
        known = people[[not str(a).startswith(ANONYMOUS_PREFIX) for a in people["actor"]]]
        counts = known["steps_reached"].value_counts().to_dict() if len(known) else {}
        expected_stops = [int(counts.get(k, 0)) for k in range(1, len(steps) + 1)]
        expected = funnel_frame(events, steps, links=links, **case)
        for given in (links, None):
            frame, stops = funnel_with_stops(events, steps, links=given, **case)
            assert frame.equals(expected), (case, frame, expected)
            assert stops == expected_stops, case
        if case.get("start") != date(2030, 1, 1):
            assert sum(expected_stops) >= 2, case  # the case has known entrants
            assert len(known) < len(people), case  # and anonymous ones
