"""Console pages of the experiments domain.

* ``GET /experiments``: every experiment and hold-out with its status and split.
* ``GET /experiments/new`` and ``POST /experiments`` (form with CSRF token; operators and admins):
  the set-up form; a refused field comes back with its message next to it.
* ``GET /experiments/{key}``: the set-up and the **live status**: exposed units per variant
  against the planned split, with a sample-ratio-mismatch warning when the split is off;
  ``POST /experiments/{key}/start`` and ``/stop`` (form, CSRF) change the status.
* ``GET /experiments/{key}/results``: the **results**, warnings first, then per metric the effect
  of each variant with its interval, said in plain words, and what the numbers do not say. The
  chart (``static/experiments.js``) draws each relative effect with its interval from a
  ``<script type="application/json">`` block.

Every page needs a signed-in user; every visible string comes from ``i18n/<lang>/experiments.json``
(keys chosen here are marked with :func:`k`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from growthwheel.api.deps import DbSession, PageUser, Principal, check_csrf
from growthwheel.api.errors import validation_message
from growthwheel.api.warehouse import warehouse
from growthwheel.errors import GrowthwheelError
from growthwheel.experiments import service
from growthwheel.experiments.models import Experiment
from growthwheel.experiments.schemas import KEY_PATTERN, ExperimentCreate
from growthwheel.kit.money import currency_exponent
from growthwheel.segments import repository as segments_repository
from growthwheel.web.i18n import (
    Translator,
    format_count,
    format_money,
    k,
)
from growthwheel.web.pages import code_translator, page_translator, render

router = APIRouter(include_in_schema=False)

Key = Annotated[str, Path(pattern=KEY_PATTERN, max_length=64)]

#: Metrics the set-up form offers, by form value.
METRIC_PRESETS: dict[str, dict[str, Any]] = {
    "conversion": {"kind": "conversion"},
    "revenue": {"kind": "revenue", "cap": 0.99},
    "orders": {"kind": "orders"},
    "aov": {"kind": "aov"},
    "add_to_cart": {"kind": "conversion", "event": "add_to_cart"},
    "retention": {"kind": "retention", "days_from": 7, "days_to": 14},
    "refund_rate": {"kind": "refund_rate"},
}
METRIC_KEYS = {
    "conversion": k("experiments.metric.conversion"), "revenue": k("experiments.metric.revenue"),
    "orders": k("experiments.metric.orders"), "aov": k("experiments.metric.aov"),
    "refund_rate": k("experiments.metric.refund_rate"),
}
STATUS_KEYS = {"draft": k("experiments.status.draft"), "running": k("experiments.status.running"),
               "stopped": k("experiments.status.stopped")}
KIND_KEYS = {"experiment": k("experiments.kind.experiment"), "holdout": k("experiments.kind.holdout")}
UNIT_KEYS = {"customer": k("experiments.unit.customer"), "anonymous": k("experiments.unit.anonymous")}
METHOD_KEYS = {"fixed": k("experiments.method.fixed"), "sequential": k("experiments.method.sequential")}
ROLE_KEYS = {"primary": k("experiments.role.primary"), "secondary": k("experiments.role.secondary"),
             "guardrail": k("experiments.role.guardrail")}
WARNING_KEYS = {
    "srm": k("experiments.warn.srm"),
    "multiple_exposures": k("experiments.warn.multiple_exposures"),
    "peeking": k("experiments.warn.peeking"),
    "peeking_unplanned": k("experiments.warn.peeking_unplanned"),
    "guardrail": k("experiments.warn.guardrail"),
}
#: Form fields of the set-up form, by the model's field name.
FORM_FIELDS = ("key", "name", "hypothesis", "kind", "unit", "variants", "weights", "holdout_share", "traffic",
               "layer", "segment", "primary", "secondary", "guardrails", "method", "alpha", "planned_units",
               "cuped_days")
#: Model field → form field where its error is shown.
ERROR_FIELD = {"variants": "variants", "holdout_share": "holdout_share", "primary_metric": "primary",
               "secondary_metrics": "secondary", "guardrail_metrics": "guardrails", "metrics": "secondary"}


def _can_edit(user: Principal) -> bool:
    return "write" in user.scopes


def _local(value: datetime | None, zone: ZoneInfo) -> str:
    aware = service.as_utc(value)
    return "–" if aware is None else aware.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _zone(request: Request) -> ZoneInfo:
    return ZoneInfo(request.app.state.cfg.shop().timezone)


def experiment_href(key: str) -> str:
    """The console page of an experiment."""
    return f"/experiments/{key}"


def _metric_name(t: Translator, spec: dict[str, Any]) -> str:
    """A metric's name in the page's language."""
    kind = str(spec.get("kind"))
    if kind == "conversion" and spec.get("event"):
        return t(k("experiments.metric.event"), event=spec["event"])
    if kind == "retention":
        return t(k("experiments.metric.retention_days"), start=spec.get("days_from"), end=spec.get("days_to"))
    return t(METRIC_KEYS[kind]) if kind in METRIC_KEYS else kind


def _variants_text(exp: Experiment) -> str:
    return " / ".join(f"{v['name']} {float(v['weight']):.0%}" for v in exp.variants)


# ---------------------------------------------------------------------------------------------
# List
# ---------------------------------------------------------------------------------------------


@router.get("/experiments", response_class=HTMLResponse)
def experiments_page(request: Request, user: PageUser, session: DbSession) -> HTMLResponse:
    """Every experiment and hold-out, newest first."""
    zone = _zone(request)
    rows = [{"key": e.key, "href": experiment_href(e.key), "name": e.name, "kind_key": KIND_KEYS[e.kind],
             "status": e.status, "status_key": STATUS_KEYS[e.status], "variants": _variants_text(e),
             "traffic": f"{e.traffic:.0%}", "layer": e.layer or "", "started": _local(e.started_at, zone)}
            for e in service.list_experiments(session)]
    context = {"experiments": rows, "can_edit": _can_edit(user)}
    return render(request, "experiments/index.html.j2", context, user=user)


# ---------------------------------------------------------------------------------------------
# Set-up form
# ---------------------------------------------------------------------------------------------


def _form_page(request: Request, user: Principal, session: Session, form: dict[str, Any],
               errors: dict[str, str], status: int = 200) -> HTMLResponse:
    segments = [{"value": s.name, "label": s.name} for s in segments_repository.all_segments(session)]
    context = {
        "form": form, "errors": errors, "can_edit": _can_edit(user), "segments": segments,
        "metrics": [{"value": name, "label": _metric_name(page_translator(request), spec)}
                    for name, spec in METRIC_PRESETS.items()],
        "kinds": KIND_KEYS, "units": UNIT_KEYS, "methods": METHOD_KEYS,
    }
    return render(request, "experiments/new.html.j2", context, user=user, status=status)


_DEFAULT_FORM: dict[str, Any] = {
    "key": "", "name": "", "hypothesis": "", "kind": "experiment", "unit": "customer",
    "variants": "control, treatment", "weights": "50, 50", "holdout_share": "10", "traffic": "100",
    "layer": "", "segment": "", "primary": "conversion", "secondary": ["revenue", "aov"],
    "guardrails": ["refund_rate"], "method": "fixed", "alpha": "0.05", "planned_units": "",
    "cuped_days": "14",
}


@router.get("/experiments/new", response_class=HTMLResponse)
def new_experiment_page(request: Request, user: PageUser, session: DbSession) -> HTMLResponse:
    """The set-up form with sensible defaults (50/50, conversion as the primary metric)."""
    return _form_page(request, user, session, dict(_DEFAULT_FORM), {})


class _FormError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _number(form: dict[str, Any], field: str, *, percent: bool = False) -> float | None:
    text = str(form.get(field) or "").strip().rstrip("%")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise _FormError(field, k("experiments.error.number")) from None
    return value / 100 if percent else value


def body_from_form(form: dict[str, Any]) -> dict[str, Any]:
    """The API body (``ExperimentCreate``) of a submitted set-up form; percentages become shares."""
    body: dict[str, Any] = {
        "key": str(form.get("key") or "").strip(), "name": str(form.get("name") or "").strip(),
        "hypothesis": str(form.get("hypothesis") or "").strip() or None,
        "kind": form.get("kind") or "experiment", "unit": form.get("unit") or "customer",
        "layer": str(form.get("layer") or "").strip() or None,
        "segment": str(form.get("segment") or "").strip() or None,
        "method": form.get("method") or "fixed",
    }
    if body["kind"] == "holdout":
        body["holdout_share"] = _number(form, "holdout_share", percent=True)
    else:
        names = [n.strip() for n in str(form.get("variants") or "").split(",") if n.strip()]
        weights_text = [w.strip() for w in str(form.get("weights") or "").split(",") if w.strip()]
        if len(names) != len(weights_text):
            raise _FormError("weights", k("experiments.error.weights_count"))
        try:
            weights = [float(w.rstrip("%")) / 100 for w in weights_text]
        except ValueError:
            raise _FormError("weights", k("experiments.error.number")) from None
        body["variants"] = [{"name": n, "weight": w} for n, w in zip(names, weights, strict=True)]
    for field, target, percent in (("traffic", "traffic", True), ("alpha", "alpha", False),
                                   ("planned_units", "planned_units", False),
                                   ("cuped_days", "cuped_days", False)):
        value = _number(form, field, percent=percent)
        if value is not None:
            body[target] = int(value) if target in ("planned_units", "cuped_days") else value
    if body["kind"] == "experiment" and body["method"] == "fixed" and not body.get("planned_units"):
        raise _FormError("planned_units", k("experiments.error.planned_units_required"))
    primary = str(form.get("primary") or "conversion")
    chosen = [*form.get("secondary", []), *form.get("guardrails", [])]
    for name in [primary, *chosen]:
        if name not in METRIC_PRESETS:
            raise _FormError("primary", k("experiments.error.metric"))
    body["primary_metric"] = METRIC_PRESETS[primary]
    body["secondary_metrics"] = [METRIC_PRESETS[n] for n in form.get("secondary", []) if n != primary]
    body["guardrail_metrics"] = [METRIC_PRESETS[n] for n in form.get("guardrails", [])]
    return body


#: Why a metric has no result yet, by the service's code.
METRIC_ERROR_KEYS = {"too_few_units": k("experiments.error.too_few_units")}


def _metric_error(t: Translator, metric: dict[str, Any]) -> str | None:
    """Why a metric has no result yet, in the reader's language when the service gave a code."""
    key = METRIC_ERROR_KEYS.get(str(metric.get("error_code")))
    if key is not None:
        return t(key, **metric.get("error_values", {}))
    error: str | None = metric.get("error")
    return error


def _validation_field(exc: ValidationError, t: Translator) -> tuple[str, str]:
    first = exc.errors()[0]
    loc = [str(p) for p in first["loc"]]
    message = validation_message(t, first).removeprefix("Value error, ")
    field = loc[0] if loc else ""
    if not loc:  # a model-level check: its message starts with the field it is about
        field = message.split(":", 1)[0].split(" ", 1)[0]
    field = ERROR_FIELD.get(field, field)
    return (field if field in FORM_FIELDS else "key"), message


@router.post("/experiments", response_class=HTMLResponse)
async def create_experiment(request: Request, user: PageUser, session: DbSession) -> Response:
    """Save the set-up as a draft and go to its page; a refused field is shown next to it."""
    await check_csrf(request)
    raw = await request.form()
    form: dict[str, Any] = {name: str(raw.get(name) or "") for name in FORM_FIELDS}
    form["secondary"] = [str(v) for v in raw.getlist("secondary")]
    form["guardrails"] = [str(v) for v in raw.getlist("guardrails")]
    if not _can_edit(user):
        return await run_in_threadpool(_form_page, request, user, session, form,
                                       {"key": k("experiments.not_allowed")}, 403)
    errors: dict[str, str] = {}
    try:
        body = ExperimentCreate.model_validate(body_from_form(form))
        await run_in_threadpool(service.create_experiment, session, body, principal=user)
    except _FormError as exc:
        errors[exc.field] = exc.message
    except ValidationError as exc:
        field, message = _validation_field(exc, page_translator(request))
        errors[field] = message
    except GrowthwheelError as exc:
        field = exc.field or (exc.message.split(":", 1)[0] if ":" in exc.message else "key")
        field = ERROR_FIELD.get(field, field)
        # a coded error in the page's language (without the field: it is shown next to it)
        reason = page_translator(request)(exc.key, **exc.params) if exc.key else exc.message
        errors[field if field in FORM_FIELDS else "key"] = reason
    if errors:
        return await run_in_threadpool(_form_page, request, user, session, form, errors, 422)
    return RedirectResponse(experiment_href(form["key"].strip()), status_code=303)


# ---------------------------------------------------------------------------------------------
# Live status, start, stop
# ---------------------------------------------------------------------------------------------


def _setup_rows(t: Translator, exp: Experiment, session: Session) -> list[dict[str, str]]:
    segment = segments_repository.segment_by_id(session, exp.segment_id) if exp.segment_id else None
    rows = [
        {"label": t("experiments.field.kind"), "value": t(KIND_KEYS[exp.kind])},
        {"label": t("experiments.field.unit"), "value": t(UNIT_KEYS[exp.unit])},
        {"label": t("experiments.field.variants"), "value": _variants_text(exp), "code": "yes"},
        {"label": t("experiments.field.traffic"), "value": f"{exp.traffic:.0%}"},
        {"label": t("experiments.field.layer"), "value": exp.layer or "–", "code": "yes"},
        {"label": t("experiments.field.segment"), "value": segment.name if segment else "–"},
        {"label": t("experiments.field.primary"), "value": _metric_name(t, exp.primary_metric)},
        {"label": t("experiments.field.secondary"),
         "value": ", ".join(_metric_name(t, m) for m in exp.secondary_metrics) or "–"},
        {"label": t("experiments.field.guardrails"),
         "value": ", ".join(_metric_name(t, m) for m in exp.guardrail_metrics) or "–"},
        {"label": t("experiments.field.method"), "value": t(METHOD_KEYS[exp.method])},
        {"label": t("experiments.field.alpha"), "value": f"{exp.alpha:g}"},
        {"label": t("experiments.field.planned_units"),
         "value": format_count(exp.planned_units) if exp.planned_units else "–"},
    ]
    return rows


def _srm_p(live: dict[str, Any] | None) -> str | None:
    srm = live["srm"] if live else None
    return None if not srm or srm["p_value"] is None else f"{srm['p_value']:.2g}"


@router.get("/experiments/{key}", response_class=HTMLResponse)
def experiment_page(key: Key, request: Request, user: PageUser, session: DbSession) -> HTMLResponse:
    """The set-up and the live status: exposed units per variant against the planned split."""
    t = page_translator(request)
    exp = service.get_experiment(session, key)
    zone = _zone(request)
    live: dict[str, Any] | None = None
    if exp.started_at is not None:
        with warehouse(request).read() as backend:
            live = service.live_status(backend, exp)
        for v in live["variants"]:
            v["units_text"] = format_count(v["units"])
            v["share_text"] = "–" if v["share"] is None else f"{v['share']:.1%}"
            v["weight_text"] = f"{v['weight']:.1%}"
    context = {
        "exp": {"key": exp.key, "name": exp.name, "hypothesis": exp.hypothesis, "status": exp.status,
                "status_key": STATUS_KEYS[exp.status], "started": _local(exp.started_at, zone),
                "stopped": _local(exp.stopped_at, zone),
                "results_href": f"{experiment_href(exp.key)}/results"},
        "setup": _setup_rows(t, exp, session),
        "live": live,
        "srm_p": _srm_p(live),
        "units_text": format_count(live["units"]) if live else "0",
        "can_edit": _can_edit(user),
        "needs_planned_units": exp.status == "draft" and service.needs_planned_units(exp),
    }
    return render(request, "experiments/status.html.j2", context, user=user)


async def _change(request: Request, user: Principal, session: Session, key: str, action: str) -> Response:
    await check_csrf(request)
    exp = await run_in_threadpool(service.get_experiment, session, key)
    if _can_edit(user):
        change = service.start_experiment if action == "start" else service.stop_experiment
        await run_in_threadpool(change, session, exp, principal=user)
    return RedirectResponse(experiment_href(key), status_code=303)


@router.post("/experiments/{key}/start", response_class=HTMLResponse)
async def start_experiment(key: Key, request: Request, user: PageUser, session: DbSession) -> Response:
    """Start the draft and go back to its page."""
    return await _change(request, user, session, key, "start")


@router.post("/experiments/{key}/stop", response_class=HTMLResponse)
async def stop_experiment(key: Key, request: Request, user: PageUser, session: DbSession) -> Response:
    """Stop the experiment and go back to its page."""
    return await _change(request, user, session, key, "stop")


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


class _Formatter:
    """Formats a metric's values for the page: money for revenue and AOV, percentages for rates."""

    def __init__(self, kind: str, currency: str, t: Translator) -> None:
        self.t = t
        self.kind = kind
        self.currency = currency
        self.exponent = currency_exponent(currency)

    def value(self, v: float | None) -> str:
        if v is None:
            return "–"
        if self.kind in ("revenue", "aov"):
            return format_money(Decimal(str(v)).scaleb(-self.exponent), self.currency, places=self.exponent)
        if self.kind in ("conversion", "retention", "refund_rate"):
            return f"{v:.2%}"
        return f"{v:,.3f}"

    def change(self, v: float | None) -> str:
        if v is None:
            return "–"
        if self.kind in ("conversion", "retention", "refund_rate"):
            return self.t(k("experiments.unit.pp"), value=f"{v * 100:+.2f}")
        text = self.value(abs(v))
        return ("+" if v >= 0 else "-") + text


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:+.1%}"


def _interval(show: Any, bounds: dict[str, Any]) -> str:
    """``low … high``, or one dash when there is no interval yet."""
    low, high = bounds.get("ci_lower"), bounds.get("ci_upper")
    return "–" if low is None or high is None else f"{show(low)} … {show(high)}"


def _verdict(t: Translator, comp: dict[str, Any], metric: str, fmt: _Formatter, level: str) -> Markup:
    """One sentence on a comparison. Significance is decided on the adjusted p-value; when the
    (unadjusted) interval excludes zero but the adjusted p-value does not pass, the sentence says
    that the difference does not survive the adjustment rather than calling it clear."""
    rel, absolute = comp["relative"] or {}, comp["absolute"] or {}
    p = comp.get("p_adjusted")
    values = {"variant": comp["variant"], "metric": metric, "level": level,
              "rel": _pct(rel.get("estimate")), "abs": fmt.change(absolute.get("estimate")),
              "low": fmt.change(absolute.get("ci_lower")), "high": fmt.change(absolute.get("ci_upper")),
              "p": "–" if p is None else f"{p:.3f}"}
    low, high = absolute.get("ci_lower"), absolute.get("ci_upper")
    tc = code_translator(t)  # the variant is an identifier: shown as code
    if low is None or high is None:  # nothing to compare yet: say so instead of "from – to –"
        return tc(k("experiments.verdict.no_data"), values, ("variant",))
    if comp["significant"]:
        up = (absolute.get("estimate") or 0) > 0
        return tc(k("experiments.verdict.up") if up else k("experiments.verdict.down"), values, ("variant",))
    if low is not None and high is not None and (low > 0 or high < 0):
        return tc(k("experiments.verdict.adjusted"), values, ("variant",))
    return tc(k("experiments.verdict.none"), values, ("variant",))


def _warning_text(t: Translator, warning: dict[str, Any], names: dict[str, str]) -> str:
    code = str(warning["code"])
    values: dict[str, Any] = {}
    if code == "srm":
        values = {"p": f"{warning.get('p_value') or 0:.2g}"}
    elif code == "multiple_exposures":
        values = {"units": format_count(int(warning["units"]))}
    elif code == "peeking":
        values = {"units": format_count(int(warning["units"])),
                  "planned": format_count(int(warning["planned_units"]))}
    elif code == "guardrail":
        values = {"metric": names.get(str(warning["metric"]), str(warning["metric"])),
                  "variant": warning["variant"]}
    return t(WARNING_KEYS[code], **values)


@router.get("/experiments/{key}/results", response_class=HTMLResponse)
def results_page(key: Key, request: Request, user: PageUser, session: DbSession) -> HTMLResponse:
    """The results in plain words: warnings first, then every metric's effect with its interval."""
    t = page_translator(request)
    exp = service.get_experiment(session, key)
    currency: str = request.app.state.cfg.shop().currency
    if exp.started_at is None:
        return render(request, "experiments/results.html.j2",
                      {"exp": {"key": exp.key, "name": exp.name, "href": experiment_href(exp.key)},
                       "found": None}, user=user)
    with warehouse(request).read() as backend:
        found = service.results(backend, exp)
    level = f"{(1 - exp.alpha) * 100:g}"
    names = {m["label"]: _metric_name(t, m["spec"]) for m in found["metrics"]}
    metrics_view: list[dict[str, Any]] = []
    chart_rows: list[dict[str, Any]] = []
    for m in found["metrics"]:
        fmt = _Formatter(m["spec"]["kind"], currency, t)
        name = names[m["label"]]
        view: dict[str, Any] = {"label": m["label"], "name": name, "role_key": ROLE_KEYS[m["role"]],
                                "role": m["role"], "error": _metric_error(t, m),
                                # the CUPED note only beside an interval it narrowed
                                "cuped": m.get("cuped", False) and any(
                                    (c.get("absolute") or {}).get("ci_lower") is not None
                                    for c in m.get("comparisons", [])),
                                "rows": []}
        if "error" not in m:
            means = {v["name"]: v for v in m["variants"]}
            control = m["variants"][0]
            view["control"] = {"name": control["name"], "n": format_count(control["n"]),
                               "mean": fmt.value(control["mean"])}
            for comp in m["comparisons"]:
                rel, absolute = comp["relative"] or {}, comp["absolute"] or {}
                view["rows"].append({
                    "variant": comp["variant"], "n": format_count(means[comp["variant"]]["n"]),
                    "mean": fmt.value(means[comp["variant"]]["mean"]),
                    "abs": fmt.change(absolute.get("estimate")),
                    "abs_ci": _interval(fmt.change, absolute),
                    "rel": _pct(rel.get("estimate")),
                    "rel_ci": _interval(_pct, rel),
                    "p": "–" if comp["p_adjusted"] is None else f"{comp['p_adjusted']:.3f}",
                    "chance": "–" if comp["chance_to_win"] is None else f"{comp['chance_to_win']:.0%}",
                    "significant": comp["significant"],
                    "verdict": _verdict(t, comp, name, fmt, level),
                })
                chart_rows.append({"label": f"{name} · {comp['variant']}", "estimate": rel.get("estimate"),
                                   "low": rel.get("ci_lower"), "high": rel.get("ci_upper"),
                                   "significant": comp["significant"], "role": m["role"]})
        metrics_view.append(view)
    status = found["status"]
    context = {
        "exp": {"key": exp.key, "name": exp.name, "href": experiment_href(exp.key), "status": exp.status,
                "status_key": STATUS_KEYS[exp.status], "method_key": METHOD_KEYS[exp.method], "level": level},
        "found": found,
        "units_text": format_count(status["units"]),
        "warnings": [{"code": w["code"], "text": _warning_text(t, w, names)} for w in found["warnings"]],
        "metrics": metrics_view,
        "variant_names": [str(v["name"]) for v in exp.variants],
        "sequential": exp.method == "sequential",
        "chart": {"rows": chart_rows, "labels": {"effect": t("experiments.chart.effect"),
                                                 "interval": t("experiments.chart.interval")}},
        "as_of": datetime.now(UTC).astimezone(_zone(request)).strftime("%Y-%m-%d %H:%M"),
    }
    return render(request, "experiments/results.html.j2", context, user=user)
