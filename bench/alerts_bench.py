"""Alerts on the demo shop: does the detector find the anomalies the simulator injected, and how
many false alarms does it raise? And what does a whole evaluation cost against computing the KPI
catalogue once?

Builds a demo shop (``--customers``, 365 days) in a temporary data directory, judges the built-in
rules (CAC up by channel, conversion down, refund-rate spike, negative-review spike by SKU; the
stock-out rule is scored apart, against the designed supplier failure of the demo's stock) over
every day from the ninth week on, then compares the alerts with ``ground_truth.json``'s
``anomalies``:

* **recall** — injected incidents with at least one alert of their rule (same metric and
  dimension value) inside their dates;
* **precision** — alerts that fall inside an injected incident of their rule, over all alerts of
  the built-in rules. The refund-rate rule has no injected incident: each of its alerts counts as
  a false alarm (the simulator's refunds are noise around a constant rate).

Prints the figures and the evaluation time beside one ``kpi_frame`` by day (same run).

    .venv/bin/python bench/alerts_bench.py --customers 20000
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from growthwheel.alerts import rules, service
from growthwheel.alerts.models import Alert, AlertRule
from growthwheel.config import Settings
from growthwheel.insight import kpis
from growthwheel.sim.demo import build_demo
from growthwheel.store.db import migrate, session_scope
from growthwheel.warehouse import connect


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    start, days = date(2025, 1, 1), 365
    with tempfile.TemporaryDirectory() as folder:
        cfg = Settings(data_dir=Path(folder), database_url=None)
        t0 = time.perf_counter()
        run = build_demo(cfg, customers=args.customers, days=days, seed=args.seed, start=start)
        built = time.perf_counter() - t0
        everything = json.loads(run.ground_truth.read_text(encoding="utf-8"))
        truth = everything["anomalies"]
        at_risk = set(everything.get("inventory", {}).get("at_risk_at_end", []))
        migrate(cfg)
        con = connect(cfg)
        try:
            t1 = time.perf_counter()
            kpis.kpi_frame(con, by="day", start=start, end=start + timedelta(days=days - 1))
            baseline = time.perf_counter() - t1
            with session_scope(cfg) as session:
                service.ensure_builtin_rules(session)
                t2 = time.perf_counter()
                result = service.evaluate(session, con, today=start + timedelta(days=days),
                                          since=start + timedelta(days=56))
                evaluated = time.perf_counter() - t2
                by_id = {r.id: r for r in session.query(AlertRule).all()}
                every = [(by_id[a.rule_id], a) for a in session.query(Alert).all()
                         if by_id[a.rule_id].builtin]
                # the stock-out rule is judged against the designed supplier failure, not the anomalies
                alerts = [(r, a) for r, a in every if r.metric != rules.STOCKOUT_RISK]
                stockouts = {a.dimension_value for r, a in every if r.metric == rules.STOCKOUT_RISK}
        finally:
            con.disconnect()

    def inside(rule: AlertRule, alert: Alert, incident: dict[str, object]) -> bool:
        first = date.fromisoformat(str(incident["first_day"]))
        last = date.fromisoformat(str(incident["last_day"]))
        return (rule.metric == incident["metric"] and (incident["value"] is None
                                                        or alert.dimension_value == incident["value"])
                and first <= alert.period_start <= last)

    found = [i for i in truth if any(inside(r, a, i) for r, a in alerts)]
    true_alerts = [(r, a) for r, a in alerts if any(inside(r, a, i) for i in truth)]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"demo shop: {args.customers:,} customers × {days} days, built in {built:.1f} s")
    recall = len(found) / max(1, len(truth))
    print(f"injected incidents: {len(truth)}; found: {len(found)} → recall {recall:.2f}")
    for incident in truth:
        hit = incident in found
        print(f"  {'✓' if hit else '✗'} {incident['kind']:<22} {incident['first_day']} …"
              f" {incident['last_day']}  {incident['value'] or ''}")
    print(f"alerts of the built-in rules: {len(alerts)}; inside an incident: {len(true_alerts)}"
          f" → precision {len(true_alerts) / max(1, len(alerts)):.2f}")
    for rule, alert in alerts:
        if (rule, alert) not in true_alerts:
            print(f"  false alarm: {rule.builtin} {alert.dimension_value or ''} {alert.period_start}"
                  f" value {alert.value:.4g} band {alert.lower:.4g}…{alert.upper:.4g}")
    print(f"stock-out rule (latest day): {len(stockouts)} SKUs; of the {len(at_risk)} best sellers whose "
          f"supplier failed at the end, {len(stockouts & at_risk)} flagged")
    print(f"evaluation of {result.rules} rules over {(days - 56)} days: {evaluated:.2f} s; "
          f"one kpi_frame by day (baseline): {baseline:.2f} s → ratio {evaluated / baseline:.1f}x; "
          f"peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
