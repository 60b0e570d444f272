"""The JSON examples in ``examples/`` stay valid inputs of the commands and routes the README
shows them with (their schemas change with the code; this keeps the examples honest)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from growthwheel.cli.main import app
from growthwheel.experiments.schemas import ExperimentCreate
from growthwheel.promotions.schemas import BatchCreate, CartIn, PromotionCreate

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load(name: str) -> object:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def test_promotion_coupon_cart_and_experiment_examples_validate() -> None:
    promotion = PromotionCreate.model_validate(_load("promotions/manjian_tiers.json"))
    assert promotion.budget_amount == 5_000_000
    batch = BatchCreate.model_validate(_load("promotions/coupon_batch.json"))
    assert batch.per_customer_limit == 1
    cart = CartIn.model_validate(_load("promotions/cart.json"))
    assert sum(line.unit_price * line.quantity for line in cart.lines) == 38_000
    experiment = ExperimentCreate.model_validate(_load("experiments/pdp_gallery.json"))
    assert [v.name for v in experiment.variant_list()] == ["control", "gallery"]


def test_stats_examples_give_the_published_welch_answer_and_three_arms() -> None:
    runner = CliRunner()
    welch = runner.invoke(app, ["stats", "compare", "--input", str(EXAMPLES / "stats/revenue_per_user.json"),
                                "--json"])
    assert welch.exit_code == 0, welch.output
    absolute = json.loads(welch.stdout)["comparisons"][0]["absolute"]
    assert round(absolute["p_value"], 5) == 0.02016  # GrowthBook's Welch case
    three = runner.invoke(app, ["stats", "compare", "--input", str(EXAMPLES / "stats/conversion.json"),
                                "--json"])
    assert three.exit_code == 0, three.output
    assert [c["treatment"] for c in json.loads(three.stdout)["comparisons"]] == ["coupon-10", "coupon-20"]
