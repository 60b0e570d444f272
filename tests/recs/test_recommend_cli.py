"""``growthwheel recommend …`` on a warehouse holding a small simulated shop: the evaluation
harness prints every model side by side and the blend beats re-purchase frequency; refresh
stores the lists that ``show`` and ``also-bought`` then print; co-purchase rules and bundles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from growthwheel.cli.main import app
from growthwheel.config import Settings
from growthwheel.sim.shop import simulate, write_table
from growthwheel.warehouse import ingest

runner = CliRunner()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("recs-cli")
    shop = simulate(customers_count=2500, days=365, seed=11)
    cfg = Settings(data_dir=folder / "data", database_url=None)
    for name, suffix in (("products", ".csv"), ("order_lines", ".parquet")):
        path = folder / f"{name}{suffix}"
        write_table(shop.tables[name], path)
        done = ingest.import_files(name, [path], cfg=cfg)
        assert done.rows_quarantined == 0
    return folder / "data"


def _run(data_dir: Path, *args: str) -> str:
    result = runner.invoke(app, ["--data-dir", str(data_dir), "recommend", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_evaluate_prints_every_model_and_the_blend_beats_repurchase(data_dir: Path) -> None:
    body = json.loads(_run(data_dir, "evaluate", "--json"))
    ndcg = {m["model"]: m["ndcg@10"] for m in body["models"]}
    assert set(ndcg) == {"popularity", "repurchase", "replenish", "item_cosine", "tifu_knn", "als", "blend"}
    assert ndcg["blend"] > ndcg["repurchase"]
    assert body["customers_tested"] > 500
    table = _run(data_dir, "evaluate")
    for word in ("NDCG@10", "recall@10", "hit rate", "coverage", "tifu_knn", "blend"):
        assert word in table


def test_refresh_then_show_and_also_bought(data_dir: Path) -> None:
    assert "customers" in _run(data_dir, "refresh", "--skip-evaluation")
    shown = json.loads(_run(data_dir, "show", "C0000002", "--json"))
    assert shown["source"] == "personal"
    assert len(shown["items"]) == 10
    rules = json.loads(_run(data_dir, "copurchase", "--json", "--min-support", "0", "--min-count", "2"))
    top = rules["rows"][0]
    also = json.loads(_run(data_dir, "also-bought", top["antecedent"], "--json"))
    assert also["items"]
    _run(data_dir, "exclude", also["items"][0]["sku"], "--reason", "out_of_stock")
    again = json.loads(_run(data_dir, "also-bought", top["antecedent"], "--json"))
    assert also["items"][0]["sku"] not in [i["sku"] for i in again["items"]]
    _run(data_dir, "include", also["items"][0]["sku"])


def test_copurchase_by_category_and_bundles(data_dir: Path) -> None:
    cats = json.loads(_run(data_dir, "copurchase", "--level", "category", "--json"))
    assert cats["rows"]
    assert all("/" in r["antecedent"] for r in cats["rows"])  # the demo's categories are paths
    bundles = json.loads(_run(data_dir, "copurchase", "--size", "bundles", "--json", "--min-support", "0",
                              "--min-count", "2"))
    ups = [r["uplift_per_basket"] for r in bundles["rows"]]
    assert ups == sorted(ups, reverse=True)
    assert all(r["lift"] > 1 for r in bundles["rows"])
    assert "Bundles" in _run(data_dir, "copurchase", "--size", "bundles", "--min-support", "0")


def test_bad_option_is_one_line(data_dir: Path) -> None:
    result = runner.invoke(app, ["--data-dir", str(data_dir), "recommend", "show", "C0000002",
                                 "--limit", "0"])
    assert result.exit_code == 1
    assert "limit" in result.output
