"""Alert evaluation over the whole KPI catalogue × every dimension it has, against one KPI frame.

An anomaly rule (the robust seasonal detector, by day) on every metric of the catalogue for every
breakdown the metric has a meaning for (channel, category, … and the whole shop), judged over the
last 120 days of a demo shop. Timed in the same run:

* **evaluation** — ``alerts.service.evaluate`` as the worker runs it: the rules judged together
  share the KPI frames (one per breakdown and window);
* **rule by rule** — each rule judged on its own (``find`` without the shared frames): what the
  evaluation cost before frames were shared;
* **baseline** — one ``kpi_frame`` by day over the same window, the whole shop (after one warm-up
  call, as the evaluation's first frame is not: the ratio is if anything in the baseline's favour).

    nice -n 5 .venv/bin/python bench/alerts_catalogue_bench.py [--customers 20000]
    nice -n 5 .venv/bin/python bench/alerts_catalogue_bench.py --data-dir DIR   # an existing demo shop
    nice -n 5 .venv/bin/python bench/alerts_catalogue_bench.py --lines 10000000 --skip-alone

``--lines N`` judges the synthetic shop of ``bench/kpi_bench.py`` instead (N order lines over 2023–
2024, written straight into the warehouse file); ``--skip-alone`` leaves out the rule-by-rule run,
which at that size takes one KPI frame per rule.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from growthwheel.alerts import evaluation, rules, service
from growthwheel.alerts.models import AlertRule
from growthwheel.config import Settings
from growthwheel.insight import kpis
from growthwheel.sim.demo import build_demo
from growthwheel.store.db import migrate, session_scope
from growthwheel.warehouse import connect

START, DAYS, JUDGED = date(2025, 1, 1), 365, 120


def run(cfg: Settings, today: date = START + timedelta(days=DAYS), alone: bool = True) -> None:
    migrate(cfg)
    con = connect(cfg)
    try:
        lines = con.table("order_lines").count().execute()
        since = today - timedelta(days=JUDGED)
        window = (since - timedelta(days=evaluation.HISTORY_DAYS), today - timedelta(days=1))
        kpis.kpi_frame(con, by="day", start=window[0], end=window[1])  # warm: imports, caches
        t0 = time.perf_counter()
        kpis.kpi_frame(con, by="day", start=window[0], end=window[1])
        baseline = time.perf_counter() - t0
        with session_scope(cfg) as session:
            ids = []
            for metric in kpis.METRICS:
                for dimension in rules.dimensions_for(metric):
                    spec = rules.RuleSpec(f"{metric} by {dimension or 'shop'}", metric, "anomaly",
                                          dimension, params={"direction": "both", "z": 4.0})
                    ids.append(service.create_rule(session, spec, actor="bench").id)
            saved = [session.get(AlertRule, i) for i in ids]
            t1 = time.perf_counter()
            for rule in saved if alone else []:
                assert rule is not None
                evaluation.find(con, rule, since=since, yesterday=today - timedelta(days=1))
            seconds_alone = time.perf_counter() - t1
            t2 = time.perf_counter()
            result = service.evaluate(session, con, today=today, since=since, rule_ids=ids)
            together = time.perf_counter() - t2
            session.rollback()
        print(f"shop: {lines:,} order lines; {len(ids)} rules (every metric × its dimensions), "
              f"{JUDGED} days judged with {evaluation.HISTORY_DAYS} days of history; "
              f"{result.new_alerts} alerts, {len(result.errors)} rules with errors")
        print(f"one kpi_frame by day (baseline): {baseline:.2f} s")
        print(f"evaluation:     {together:.2f} s = {together / baseline:.1f}x the baseline")
        if alone:
            print(f"rule by rule:   {seconds_alone:.2f} s = {seconds_alone / baseline:.1f}x the baseline "
                  f"(the evaluation is {seconds_alone / together:.1f}x faster)")
    finally:
        con.disconnect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--data-dir", type=Path, help="an existing demo shop (365 days from 2025-01-01)")
    parser.add_argument("--lines", type=int, help="judge kpi_bench's synthetic shop of this many order lines")
    parser.add_argument("--skip-alone", action="store_true", help="leave out the rule-by-rule run")
    args = parser.parse_args()
    if args.data_dir:
        run(Settings(data_dir=args.data_dir, database_url=None), alone=not args.skip_alone)
        return
    if args.lines:
        import sys

        sys.path.insert(0, str(Path(__file__).parent))
        from kpi_bench import generate

        with tempfile.TemporaryDirectory() as folder:
            cfg = Settings(data_dir=Path(folder), database_url=None)
            took = generate(cfg.warehouse_path, customers=args.lines // 10, orders=args.lines * 35 // 100,
                            lines=args.lines, events=0)
            print(f"generated {args.lines:,} order lines in {took:.0f} s")
            run(cfg, today=date(2025, 1, 1), alone=not args.skip_alone)
        return
    with tempfile.TemporaryDirectory() as folder:
        cfg = Settings(data_dir=Path(folder), database_url=None)
        build_demo(cfg, customers=args.customers, days=DAYS, seed=7, start=START)
        run(cfg)


if __name__ == "__main__":
    main()
