"""Commands imported only when they run, so ``growthwheel --help`` answers at once.

A command group of the root app is named in :data:`LAZY` by where it lives and what its one-line
help says; the root group (:class:`LazyGroup`) lists it with that help and imports the module only
when the command is invoked (``growthwheel rfm …`` imports ``growthwheel.cli.insight``, nothing
else). ``tests/cli/test_startup.py`` checks that every entry loads and that its help here is the
command's own first help line, and that importing ``growthwheel.cli.main`` pulls in no pandas,
Ibis, DuckDB, SQLAlchemy or pydantic.

To add a command group: write it in the domain's ``cli.py`` and add one line to :data:`LAZY`
(not an import in ``cli/main.py``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from typer import _click as click  # typer 0.29 vendors click: its classes, not the click package's
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True)
class LazyCommand:
    """Where a command lives: ``module:attribute`` (a ``typer.Typer`` or a command function), and
    ``command`` when the entry is one command of that Typer (the insight commands sit at the top)."""

    target: str
    help: str
    command: str | None = None

    def load(self, name: str) -> click.Command:
        """Import the module and build the click command ``name``."""
        import typer

        module_name, attribute = self.target.split(":")
        obj: Any = getattr(importlib.import_module(module_name), attribute)
        # Built as the eager ``app.add_typer`` / ``app.command`` did: under a root of our own.
        root = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
        root.callback()(_no_options)
        if not isinstance(obj, typer.Typer):
            root.command(name)(obj)  # a command function
        elif self.command is not None:
            root.add_typer(obj)  # its commands at the top
        else:
            root.add_typer(obj, name=name)
        group = typer.main.get_command(root)
        assert isinstance(group, TyperGroup)
        found = group.commands.get(self.command or name)
        if found is None:
            raise LookupError(f"{self.target} has no command {self.command or name!r}")
        return found


def _no_options() -> None:
    """(A callback makes the throw-away root a group.)"""


#: Every command group of ``growthwheel`` that is imported only when used (name → where, help).
LAZY: dict[str, LazyCommand] = {
    "users": LazyCommand("growthwheel.accounts.cli:users_app", "Console users and their roles."),
    "apikeys": LazyCommand("growthwheel.accounts.cli:apikeys_app", "API keys for the shop's systems."),
    "rfm": LazyCommand("growthwheel.cli.insight:insight_app",
                       "RFM scores (quintiles 1-5), the 11 classic segments and the 8 value classes "
                       "(客户价值分类).", "rfm"),
    "lifecycle": LazyCommand("growthwheel.cli.insight:insight_app",
                             "Lifecycle stages (new, active, repeat, loyal, at risk, dormant, churned) "
                             "and moves between them.", "lifecycle"),
    "cohorts": LazyCommand("growthwheel.cli.insight:insight_app",
                           "Acquisition cohorts × periods since: retention, recurring customers and "
                           "revenue.", "cohorts"),
    "funnel": LazyCommand("growthwheel.cli.insight:insight_app",
                          "An ordered funnel over events: entrants per step, conversion, drop-off, "
                          "time to convert.", "funnel"),
    "clv": LazyCommand("growthwheel.cli.clv:clv_app",
                       "Customer lifetime value: BG/NBD or Pareto/NBD with Gamma-Gamma."),
    "stats": LazyCommand("growthwheel.cli.stats:stats_app",
                         "A/B test calculators: compare variants, size a test."),
    "segments": LazyCommand("growthwheel.segments.cli:segments_app",
                            "Customer segments: preview, save, refresh, export."),
    "tags": LazyCommand("growthwheel.segments.cli:tags_app", "Manual customer tags."),
    "personas": LazyCommand("growthwheel.cli.insight:insight_app",
                            "Cluster buyers into personas with readable labels, sizes and value.",
                            "personas"),
    "social": LazyCommand("growthwheel.social.cli:social_app",
                          "Referral, group-buying and bargain jobs."),
    "experiments": LazyCommand("growthwheel.experiments.cli:experiments_app",
                               "A/B tests and hold-outs: set up, start, stop, results."),
    "worker": LazyCommand("growthwheel.jobs.cli:worker_app",
                          "The worker: scheduled jobs and the outbox."),
    "journeys": LazyCommand("growthwheel.journeys.cli:journeys_app",
                            "Automated journeys: triggers, steps, hold-out and reports."),
    "promotions": LazyCommand("growthwheel.promotions.cli:promotions_app", "Promotions stored as data."),
    "coupons": LazyCommand("growthwheel.promotions.cli:coupons_app", "Coupon batches and codes."),
    "points": LazyCommand("growthwheel.loyalty.cli:points_app", "Points and membership jobs."),
    "loyalty": LazyCommand("growthwheel.loyalty.cli:loyalty_app", "Membership from the shop's history."),
    "marketing": LazyCommand("growthwheel.marketing.cli:marketing_app",
                             "Marketing: ad spend, attribution and budget plans."),
    "recommend": LazyCommand("growthwheel.recs.cli:recommend_app",
                             "Recommendations: evaluate models, refresh lists, co-purchase rules."),
    "alerts": LazyCommand("growthwheel.alerts.cli:alerts_app", "Alerts: KPI rules, anomalies and the inbox."),
    "products": LazyCommand("growthwheel.products.cli:products_app",
                            "Products: the product matrix (traffic drivers, profit makers, potential)."),
    "inventory": LazyCommand("growthwheel.inventory.cli:inventory_app",
                             "Inventory: demand forecasts, safety stock, stock-out risk, slow movers."),
    "surveys": LazyCommand("growthwheel.surveys.cli:surveys_app",
                           "NPS surveys: answers, NPS with its interval, segments and repurchase."),
    "voice": LazyCommand("growthwheel.voice.cli:voice_app",
                         "Reviews: sentiment, aspects and the service queue."),
    "warehouse": LazyCommand("growthwheel.cli.warehouse:warehouse_app",
                             "Upkeep of the Spark warehouse's files."),
}


class _Placeholder(TyperCommand):
    """What ``--help`` lists for a lazy command: its name and help, nothing imported."""

    def __init__(self, name: str, entry: LazyCommand) -> None:
        super().__init__(name, help=entry.help, short_help=entry.help)
        self.entry = entry


class LazyGroup(TyperGroup):
    """The root group: eager commands as Typer builds them, plus :data:`LAZY` ones loaded on use."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for name, entry in LAZY.items():
            self.commands.setdefault(name, _Placeholder(name, entry))

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Commands in alphabetical order."""
        return sorted(self.commands)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """Find the command named first in ``args`` and import it if it is still a placeholder."""
        name, command, rest = super().resolve_command(ctx, args)
        if isinstance(command, _Placeholder) and name is not None:
            command = command.entry.load(name)
            self.commands[name] = command
        return name, command, rest
