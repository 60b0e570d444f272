"""``growthwheel voice …`` on a data directory (no server running): the Taobao review export of
``examples/`` imported through the import path, its negative unanswered reviews queued (answered
ones recorded as replied), worked from the command line; feedback; one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from growthwheel.cli.main import app

runner = CliRunner()
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "taobao" / "ExportRateList.csv"


def test_taobao_reviews_into_the_queue_and_worked(tmp_path: Path) -> None:
    base = ["--data-dir", str(tmp_path / "data"), "voice"]
    done = runner.invoke(app, [*base, "import", str(EXAMPLE), "--format", "taobao", "--json"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.output)
    assert result["import"]["rows_read"] == 12
    assert result["import"]["rows_quarantined"] == 0
    queue = json.loads(runner.invoke(app, [*base, "queue", "--status", "all", "--json"]).output)
    by_review = {c["review_id"]: c for c in queue["cases"]}
    # 差评 with no answer: queued; 差评 answered in the seller centre: recorded as replied
    assert by_review["tb-3712345678901234501002"]["status"] == "open"
    assert by_review["tb-3712345678901234509001"]["status"] == "open"
    assert by_review["tb-3712345678901234513001"]["status"] == "open"
    answered = by_review["tb-3712345678901234508001"]
    assert answered["status"] == "replied"
    assert answered["reply"].startswith("亲，非常抱歉")
    assert answered["breached"] is False
    # 好评 never queued; every case has its SKU as the order reports name it
    assert "tb-3712345678901234501001" not in by_review
    assert by_review["tb-3712345678901234501002"]["sku"] == "CUP-CEL-01"
    assert by_review["tb-3712345678901234501002"]["suggested_template"] == "packaging"
    # 2024 reviews: long past their 48 hours
    assert all(c["breached"] for c in queue["cases"] if c["status"] == "open")
    # importing the same file again opens nothing new
    again = json.loads(runner.invoke(app, [*base, "import", str(EXAMPLE), "--format", "taobao",
                                           "--json"]).output)
    assert again["sync"]["opened"] == 0
    claimed = runner.invoke(app, [*base, "claim", "--as", "amy@example.com"])
    assert claimed.exit_code == 0, claimed.output
    case_id = claimed.output.split()[0]
    assert case_id == by_review["tb-3712345678901234501002"]["id"]  # due first
    replied = runner.invoke(app, [*base, "reply", case_id, "--as", "amy@example.com",
                                  "--template", "packaging"])
    assert replied.exit_code == 0, replied.output
    assert "replied" in replied.output
    twice = runner.invoke(app, [*base, "reply", case_id, "--as", "amy@example.com", "--text", "again"])
    assert twice.exit_code == 1
    assert "replied" in twice.output
    bad = runner.invoke(app, [*base, "import", str(EXAMPLE), "--format", "jd"])
    assert bad.exit_code == 1
    assert "--format" in bad.output
    feedback = runner.invoke(app, [*base, "feedback", "--end", "2024-03-15", "--days", "14", "--json"])
    assert feedback.exit_code == 0, feedback.output
    assert json.loads(feedback.output)["start"] == "2024-03-02"


def test_analyse_prints_sentiment_and_aspects() -> None:
    done = runner.invoke(app, ["voice", "analyse", "物流太慢了，但是质量很好", "--json"])
    assert done.exit_code == 0, done.output
    row = json.loads(done.output)[0]
    assert {(a["aspect"], a["polarity"]) for a in row["aspects"]} == {("logistics", "negative"),
                                                                     ("quality", "positive")}
    bad = runner.invoke(app, ["voice", "analyse", "x", "--lang", "fr"])
    assert bad.exit_code == 1
    assert "--lang" in bad.output


def test_the_worker_job_queues_imported_reviews(tmp_path: Path) -> None:
    """A generic review import, then ``voice.sync`` through the scheduler: the negative ones are
    queued once; a second run finds nothing new."""
    from datetime import UTC, datetime

    from growthwheel.config import Settings
    from growthwheel.jobs import scheduler, tasks
    from growthwheel.store.db import migrate, session_scope
    from growthwheel.voice import service
    from growthwheel.warehouse import ingest

    assert "voice.sync" in {s.kind for s in tasks.DEFAULT_SCHEDULES}
    generic = Path(__file__).resolve().parents[2] / "examples" / "generic" / "reviews.csv"
    cfg = Settings(data_dir=tmp_path / "data", database_url=None)
    ingest.import_files("reviews", [generic], cfg=cfg)
    migrate(cfg)
    now = datetime(2024, 4, 1, 2, tzinfo=UTC)
    with session_scope(cfg) as session:
        scheduler.put_schedule(session, scheduler.ScheduleSpec("voice.sync", "voice.sync", every_seconds=300),
                               now=now, timezone="Asia/Shanghai")
    outcomes = scheduler.run_due(cfg, worker="w", clock=lambda: now, timezone="Asia/Shanghai")
    assert [o.status for o in outcomes] == ["succeeded"], outcomes
    with session_scope(cfg) as session:
        cases = service.list_cases(session)
        assert cases
        assert all(c.rating <= 2 or c.sentiment < 0.5 for c in cases)
        first = len(cases)
    again = runner.invoke(app, ["--data-dir", str(cfg.data_dir), "voice", "sync"])
    assert again.exit_code == 0, again.output
    assert "0 new cases" in again.output
    with session_scope(cfg) as session:
        assert len(service.list_cases(session)) == first


def test_a_late_import_of_older_reviews_is_not_skipped(tmp_path: Path) -> None:
    """Sync follows the imports, not the reviews' dates: an export of last month's reviews imported
    after today's API reviews still opens its cases; re-importing changes nothing."""
    base = ["--data-dir", str(tmp_path / "data"), "voice"]
    head = "review_id,sku,rating,created_at,body,language\n"
    (tmp_path / "new.csv").write_text(head + "N1,S1,1,2026-03-10T10:00:00+08:00,质量太差了，很失望,zh\n",
                                      encoding="utf-8")
    (tmp_path / "old.csv").write_text(head + "O1,S1,2,2026-02-01T10:00:00+08:00,物流太慢了，等了十天,zh\n"
                                      "O2,S1,5,2026-02-02T10:00:00+08:00,很好,zh\n", encoding="utf-8")
    first = json.loads(runner.invoke(app, [*base, "import", str(tmp_path / "new.csv"), "--json"]).output)
    assert first["sync"] == {"read": 1, "opened": 1}
    late = json.loads(runner.invoke(app, [*base, "import", str(tmp_path / "old.csv"), "--json"]).output)
    assert late["sync"] == {"read": 2, "opened": 1}
    again = json.loads(runner.invoke(app, [*base, "import", str(tmp_path / "old.csv"), "--json"]).output)
    assert again["sync"]["opened"] == 0
    queue = json.loads(runner.invoke(app, [*base, "queue", "--json"]).output)
    assert [c["review_id"] for c in queue["cases"]] == ["O1", "N1"]


def test_a_file_that_is_not_a_taobao_review_export_is_refused_in_the_readers_language(tmp_path: Path) -> None:
    import pytest

    from growthwheel.voice import marketplace
    from growthwheel.warehouse.file_checks import NotThisFormatError
    from growthwheel.web.i18n import translator

    orders = tmp_path / "orders.csv"
    orders.write_text("订单编号,买家会员名,订单状态\n1001,t**1,交易成功\n", encoding="utf-8")
    with pytest.raises(NotThisFormatError) as refused:
        marketplace.read_taobao(orders, "我的导出.csv")
    assert refused.value.code == "file_format"
    zh = refused.value.text(translator("zh"))
    assert zh.startswith("“我的导出.csv”不是淘宝评价导出文件")
    assert "宝贝ID / 商家编码" in zh
    assert "文件中的列：订单编号, 买家会员名, 订单状态" in zh
    assert refused.value.text(translator("en")).startswith('"我的导出.csv" is not a Taobao review export')
