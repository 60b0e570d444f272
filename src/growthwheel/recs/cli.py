"""``growthwheel recommend …``: offline evaluation, refresh, co-purchase rules, served lists.

* ``recommend evaluate`` — every model (popularity, re-purchase, replenishment-aware re-purchase,
  item cosine, TIFU-KNN, ALS) and the chosen blend side by side: NDCG@10, recall@10, hit rate and
  coverage, each customer's last order held out;
* ``recommend refresh`` — compute and store every customer's list and every product's
  also-bought list (what the worker's ``recs.refresh`` job does daily);
* ``recommend copurchase [--level sku|category] [--size 2|3|bundles]`` — co-purchase rules with
  support, confidence and lift, or bundles with their expected basket uplift;
* ``recommend show CUSTOMER`` / ``recommend also-bought SKU`` — what the API answers;
* ``recommend exclude SKU --reason out_of_stock|not_for_sale`` / ``recommend include SKU``.

Warehouse reads run in the server when one owns the warehouse (``growthwheel.analyst``). Bad
input prints one line naming the option and exits 1. Registered lazily in ``cli/lazy.py``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from growthwheel.cli.common import Column, cli_errors, out, print_json, print_table
from growthwheel.cli.common import settings as current_settings

recommend_app = typer.Typer(help="Recommendations: evaluate models, refresh lists, co-purchase rules.",
                            no_args_is_help=True)


class Level(StrEnum):
    """What co-purchase rules relate."""

    sku = "sku"
    category = "category"


class Size(StrEnum):
    """Pairs, triples or bundles."""

    pairs = "2"
    triples = "3"
    bundles = "bundles"


class Reason(StrEnum):
    """Why a SKU is not recommended."""

    out_of_stock = "out_of_stock"
    not_for_sale = "not_for_sale"


def _f(value: Any, digits: int = 4) -> str:
    return "–" if value is None else f"{float(value):.{digits}f}"


@recommend_app.command("evaluate")
def evaluate(
    model: Annotated[list[str] | None, typer.Option("--model", help="A model (repeat); default all")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Every model and the chosen blend side by side, each customer's last order held out."""
    from growthwheel import analyst

    with cli_errors():
        report = analyst.run("recs_evaluate", {"models": model or []})
    if as_json:
        print_json(report)
        return
    cols = [Column("model", right=False), Column("NDCG@10"), Column("recall@10"), Column("hit rate"),
            Column("coverage"), Column("seconds", keep=1)]
    rows = [[m["model"], _f(m["ndcg@10"]), _f(m["recall@10"]), _f(m["hit_rate"]), _f(m["coverage"]),
             _f(m["seconds"], 2)] for m in report["models"]]
    weights = ", ".join(f"{k} {v:g}" for k, v in report["weights"].items())
    print_table("Recommenders, last order held out", cols, rows,
                caption=f"{report['customers_tested']:,} customers tested, {report['items']:,} products; "
                        f"blend: {weights}")


@recommend_app.command("refresh")
def refresh(
    skip_evaluation: Annotated[bool, typer.Option(
        "--skip-evaluation", help="Choose the blend on the validation split only")] = False,
) -> None:
    """Compute and store every customer's and every product's list (the worker does it daily)."""
    from growthwheel import analyst
    from growthwheel.accounts.models import utcnow
    from growthwheel.recs import service
    from growthwheel.store import db

    cfg = current_settings()
    with cli_errors():
        built = analyst.run("recs_build", {"evaluate": not skip_evaluation}, cfg)
        db.migrate(cfg)
        with db.session_scope(cfg) as session:
            run = service.save(session, built, utcnow())
            summary = (run.id, run.customers, run.products)
    out.print(f"refresh {summary[0]}: {summary[1]:,} customers, {summary[2]:,} products with "
              f"also-bought lists; blend {built['weights']}", highlight=False)


@recommend_app.command("copurchase")
def copurchase(
    level: Annotated[Level, typer.Option(help="Rules between SKUs or categories")] = Level.sku,
    size: Annotated[Size, typer.Option(help="Pairs (2), triples (3) or bundles")] = Size.pairs,
    min_support: Annotated[float, typer.Option(help="Smallest share of orders")] = 0.001,
    min_count: Annotated[int, typer.Option(help="Fewest orders")] = 2,
    limit: Annotated[int, typer.Option(help="Rows shown")] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON")] = False,
) -> None:
    """Co-purchase rules (support, confidence, lift) or bundles with their basket uplift."""
    from growthwheel import analyst

    with cli_errors():
        report = analyst.run("recs_copurchase", {"level": level.value, "size": size.value,
                                                 "min_support": min_support, "min_count": min_count,
                                                 "limit": limit})
    if as_json:
        print_json(report)
        return
    rows = report["rows"]
    caption = f"{report['baskets']:,} orders; itemsets in at least {report['min_count']:,}"
    if size is Size.bundles:
        from growthwheel.kit.money import currency_exponent

        money = "uplift_per_basket" in (rows[0] if rows else {})
        unit = 10 ** currency_exponent(current_settings().shop().currency)
        cols = [Column("A", right=False), Column("B", right=False), Column("orders"), Column("lift"),
                Column("uplift / order" if money else "items / order")]
        table = [[r["a"], r["b"], str(r["n_ab"]), _f(r["lift"], 2),
                  _f(r["uplift_per_basket"] / unit if money else r["uplift_items_per_basket"], 4)]
                 for r in rows]
        print_table("Bundles by expected basket uplift", cols, table, caption=caption)
        return
    if size is Size.triples:
        cols = [Column("if", right=False), Column("then", right=False), Column("orders"), Column("support"),
                Column("confidence"), Column("lift")]
        table = [[f"{r['antecedent_a']} + {r['antecedent_b']}", r["consequent"], str(r["n_abc"]),
                  _f(r["support"]), _f(r["confidence"]), _f(r["lift"], 2)] for r in rows]
    else:
        cols = [Column("if", right=False), Column("then", right=False), Column("orders"), Column("support"),
                Column("confidence"), Column("lift")]
        table = [[r["antecedent"], r["consequent"], str(r["n_ab"]), _f(r["support"]), _f(r["confidence"]),
                  _f(r["lift"], 2)] for r in rows]
    print_table("Co-purchase rules by lift", cols, table, caption=caption)


def _session() -> Any:
    from growthwheel.store import db

    return db.session_scope(current_settings())


@recommend_app.command("show")
def show(
    customer_id: Annotated[str, typer.Argument(help="The customer's id")],
    limit: Annotated[int, typer.Option(help="How many (1-20)")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON")] = False,
) -> None:
    """A customer's stored recommendations, as the API answers them."""
    from growthwheel.recs import service

    with cli_errors(), _session() as session:
        body = service.for_customer(session, customer_id, limit)
    if as_json:
        print_json(body)
        return
    print_table(f"Recommendations for {customer_id} ({body['source']})",
                [Column("sku", right=False), Column("name", right=False), Column("reason", right=False),
                 Column("score")],
                [[i["sku"], i["name"] or "–", i["reason"], _f(i["score"], 3)] for i in body["items"]])


@recommend_app.command("also-bought")
def also_bought(
    sku: Annotated[str, typer.Argument(help="The product's SKU")],
    limit: Annotated[int, typer.Option(help="How many (1-20)")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON")] = False,
) -> None:
    """Products bought together with a SKU, as the API answers them."""
    from growthwheel.recs import service

    with cli_errors(), _session() as session:
        body = service.also_bought(session, sku, limit)
    if as_json:
        print_json(body)
        return
    print_table(f"Bought with {sku}",
                [Column("sku", right=False), Column("name", right=False), Column("confidence"),
                 Column("lift")],
                [[i["sku"], i["name"] or "–", _f(i["confidence"]), _f(i["lift"], 2)] for i in body["items"]])


@recommend_app.command("exclude")
def exclude(
    sku: Annotated[str, typer.Argument(help="The product's SKU")],
    reason: Annotated[Reason, typer.Option(help="Why it is not recommended")],
) -> None:
    """Never recommend a SKU (out of stock, not for sale) until it is included again."""
    from growthwheel.accounts.models import utcnow
    from growthwheel.recs import service

    with cli_errors(), _session() as session:
        service.set_exclusion(session, sku, reason.value, "cli", utcnow())
    out.print(f"{sku}: excluded ({reason.value})", highlight=False)


@recommend_app.command("include")
def include(sku: Annotated[str, typer.Argument(help="The product's SKU")]) -> None:
    """Recommend an excluded SKU again."""
    from growthwheel.recs import service

    with cli_errors(), _session() as session:
        removed = service.clear_exclusion(session, sku)
    out.print(f"{sku}: " + ("included again" if removed else "was not excluded"), highlight=False)
