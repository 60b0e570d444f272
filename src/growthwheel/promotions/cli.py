"""``growthwheel promotions …`` and ``growthwheel coupons …`` (``growthwheel points …``: ``loyalty.cli``).

Wiring (in ``cli/main.py``)::

    from growthwheel.promotions.cli import coupons_app, promotions_app
    app.add_typer(promotions_app, name="promotions")
    app.add_typer(coupons_app, name="coupons")

These work on the operational store, so they run while the server runs (except issuing to a
segment and ``promotions holdout-results``, which read the warehouse: stop the server or use the
API).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.table import Table

from growthwheel.cli.common import cli_actor, out, print_json, store_session
from growthwheel.config import settings
from growthwheel.errors import InvalidArgumentError
from growthwheel.promotions import coupons, repository, service
from growthwheel.promotions.errors import CouponNotFoundError
from growthwheel.promotions.schemas import BatchCreate, BatchOut, PromotionCreate, PromotionOut

promotions_app = typer.Typer(help="Promotions stored as data.", no_args_is_help=True)
coupons_app = typer.Typer(help="Coupon batches and codes.", no_args_is_help=True)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise InvalidArgumentError(f"--file {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(f"--file {path}: not valid JSON ({exc})") from None


def _validated(model: Any, data: Any, path: Path) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise InvalidArgumentError(f"--file {path}: {where}: {first.get('msg', 'invalid')}") from None


AsJson = Annotated[bool, typer.Option("--json", help="Print JSON")]


# ---------------------------------------------------------------------------------------------
# promotions
# ---------------------------------------------------------------------------------------------


@promotions_app.command("list")
def list_promotions(as_json: AsJson = False) -> None:
    """Every promotion with its status, budget burn and flash-sale stock."""
    with store_session() as session:
        rows = [PromotionOut.model_validate(p) for p in repository.all_promotions(session)]
    if as_json:
        print_json([r.model_dump(mode="json") for r in rows])
        return
    table = Table()
    for column in ("id", "name", "layer", "status", "used", "budget", "stock"):
        table.add_column(column)
    for r in rows:
        budget = " / ".join(x for x in (str(r.budget_count or ""), str(r.budget_amount or "")) if x) or "–"
        stock = f"{r.stock_used}/{r.stock_limit}" if r.stock_limit is not None else "–"
        table.add_row(r.id, r.name, r.layer, r.status, f"{r.used_count} ({r.used_amount})", budget, stock)
    out.print(table)


@promotions_app.command("create")
def create_promotion(
    file: Annotated[Path, typer.Option("--file", "-f", help="JSON, as POST /api/v1/promotions")],
    as_json: AsJson = False,
) -> None:
    """Store a promotion from a JSON file."""
    body: PromotionCreate = _validated(PromotionCreate, _read_json(file), file)
    with store_session() as session:
        row = service.create_promotion(
            session, name=body.name, definition=body.definition, status=body.status, starts_at=body.starts_at,
            ends_at=body.ends_at, budget_count=body.budget_count, budget_amount=body.budget_amount,
            stock=body.stock, principal=None, actor_name=cli_actor())
        result = PromotionOut.model_validate(row)
    if as_json:
        print_json(result.model_dump(mode="json"))
    else:
        out.print(f"promotion {result.id} ({result.name}, {result.status}) created", highlight=False)


def _signed_pct(value: float | None) -> str:
    return "–" if value is None else f"{value:+.2%}"


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:,.4g}"


@promotions_app.command("holdout-results")
def holdout_results(
    promotion_id: Annotated[str, typer.Argument(help="The promotion")],
    as_json: AsJson = False,
) -> None:
    """The promotion's hold-out report: each metric, treated customers against held-out ones
    (the experiment's analysis; reads the warehouse, so stop the server or use the API)."""
    from growthwheel.warehouse import connect

    with store_session() as session:
        row = service.get_promotion(session, promotion_id)
        backend = connect(settings())
        try:
            found = service.holdout_results(session, backend, row)
        finally:
            backend.disconnect()
    if as_json:
        print_json(found)
        return
    status = found["status"]
    out.print(f"{found['promotion']['name']} — hold-out {found['promotion']['holdout']}: "
              f"{status['units']:,} customers exposed, "
              + ", ".join(f"{v['name']} {v['units']:,}" for v in status["variants"]), highlight=False)
    for warning in found["warnings"]:
        extra = {k: v for k, v in warning.items() if k != "code"}
        out.print(f"warning: {warning['code']}" + (f" {extra}" if extra else ""), highlight=False)
    table = Table()
    for column in ("metric", "held out", "treated", "relative effect", "CI", "p (adj.)"):
        table.add_column(column)
    for metric in found["metrics"]:
        if "error" in metric:
            table.add_row(metric["label"], "–", "–", metric["error"], "", "")
            continue
        for comp in metric["comparisons"]:
            rel = comp["relative"] or {}
            p_adj = rel.get("p_adjusted")
            table.add_row(metric["label"], _number(comp["control_mean"]), _number(comp["treatment_mean"]),
                          _signed_pct(rel.get("estimate")),
                          f"{_signed_pct(rel.get('ci_lower'))} to {_signed_pct(rel.get('ci_upper'))}",
                          "–" if p_adj is None else f"{p_adj:.3f}" + (" *" if comp["significant"] else ""))
    out.print(table)


# ---------------------------------------------------------------------------------------------
# coupons
# ---------------------------------------------------------------------------------------------


@coupons_app.command("create")
def create_batch(
    file: Annotated[Path, typer.Option("--file", "-f", help="JSON, as POST /api/v1/coupon-batches")],
    as_json: AsJson = False,
) -> None:
    """Create a coupon batch from a JSON file."""
    body: BatchCreate = _validated(BatchCreate, _read_json(file), file)
    with store_session() as session:
        row = coupons.create_batch(
            session, name=body.name, definition=body.definition, valid_from=body.valid_from,
            valid_until=body.valid_until, code_mode=body.code_mode, shared_code=body.shared_code,
            budget_count=body.budget_count, budget_amount=body.budget_amount,
            per_customer_limit=body.per_customer_limit, release_on_refund=body.release_on_refund,
            actor_name=cli_actor())
        result = BatchOut.model_validate(row)
    if as_json:
        print_json(result.model_dump(mode="json"))
    else:
        out.print(f"coupon batch {result.id} ({result.name}) created", highlight=False)


@coupons_app.command("generate")
def generate(
    batch_id: Annotated[str, typer.Argument(help="The batch")],
    count: Annotated[int, typer.Option("--count", "-n", min=1, max=coupons.MAX_GENERATE, help="Codes")] = 1,
    output: Annotated[Path | None, typer.Option("--out", help="Write the codes here (one a line)")] = None,
) -> None:
    """Generate single-use bearer codes for a batch; print them or write them to a file."""
    with store_session() as session:
        codes = coupons.generate_codes(session, coupons.get_batch(session, batch_id), count,
                                       actor_name=cli_actor())
    text = "\n".join(codes) + "\n"
    if output is None:
        out.print(text, end="", highlight=False)
    else:
        output.write_text(text, encoding="utf-8")
        out.print(f"{len(codes)} codes written to {output}", highlight=False)


@coupons_app.command("issue")
def issue(
    batch_id: Annotated[str, typer.Argument(help="The batch")],
    customer: Annotated[list[str] | None, typer.Option("--customer", "-c", help="Customer (repeat)")] = None,
    segment: Annotated[str | None, typer.Option("--segment", help="Every member of a saved segment")] = None,
    key: Annotated[str | None, typer.Option("--key", help="Issue once per customer per key")] = None,
    as_json: AsJson = False,
) -> None:
    """Issue codes to customers, or to every current member of a saved segment."""
    if bool(customer) == (segment is not None):
        raise InvalidArgumentError("--customer / --segment: give customers or one segment")
    with store_session() as session:
        batch = coupons.get_batch(session, batch_id)
        if segment is not None:
            from growthwheel.segments import service as segments_service
            from growthwheel.warehouse import connect

            seg = segments_service.get_segment(session, segment)
            backend = connect(settings())
            try:
                customer_ids = service.segment_member_ids(backend, seg.id)
            finally:
                backend.disconnect()
            key = key or f"segment:{seg.id}"
        else:
            customer_ids = list(customer or [])
        result = coupons.issue(session, batch, customer_ids, issue_key=key, actor_name=cli_actor())
    if as_json:
        print_json({"issued": result.issued, "already": result.already})
        return
    out.print(f"{len(result.issued)} issued, {len(result.already)} had one already", highlight=False)
    for customer_id, code in result.issued.items():
        out.print(f"{customer_id}\t{code}", highlight=False)


@coupons_app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="A code or a batch id")],
    as_json: AsJson = False,
) -> None:
    """A code (holder, uses, redemptions) or a batch (budget burn)."""
    with store_session() as session:
        code = repository.coupon_code(session, coupons.normalize_code(ref))
        if code is not None:
            data: dict[str, Any] = service.code_summary(session, code)
        else:
            batch = repository.batch(session, ref)
            if batch is None:
                raise CouponNotFoundError(f"{ref!r}: no such code or batch")
            data = {**BatchOut.model_validate(batch).model_dump(mode="json"),
                    "redemptions": repository.redemption_count(session, batch.id)}
    if as_json:
        print_json(data)
        return
    for name, value in data.items():
        out.print(f"{name}: {value}", highlight=False)
