"""What the marketing API takes and answers (pydantic). Money is integer minor units."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from growthwheel.stats.attribution import MODELS

ModelName = Literal["first_touch", "last_touch", "linear", "time_decay", "position_based", "markov",
                    "shapley"]
ALL_MODELS: tuple[ModelName, ...] = ("first_touch", "last_touch", "linear", "time_decay",
                                     "position_based", "markov", "shapley")
assert ALL_MODELS == MODELS

#: The largest amount in minor units the budget takes (10¹⁵: a thousand billion yuan in fen).
MAX_MINOR = 10**15
#: The most journeys or conversions one path may carry (sums over paths stay finite).
MAX_COUNT = 10**12


class PathIn(BaseModel):
    """One path: touchpoints in order, with the conversions, value and null journeys it had."""

    path: list[str] | str = Field(description="Channels in order, or `a > b > c`.")
    conversions: float = Field(ge=0, le=MAX_COUNT, default=0, allow_inf_nan=False)
    value: float = Field(ge=0, le=MAX_MINOR, default=0, allow_inf_nan=False,
                         description="Conversion value, minor units.")
    nulls: float = Field(ge=0, le=MAX_COUNT, default=0, allow_inf_nan=False,
                         description="Journeys with this path that did not convert.")
    new_conversions: float | None = Field(default=None, ge=0, le=MAX_COUNT, allow_inf_nan=False)


class PathsRequest(BaseModel):
    """Attribution over paths given in the request (e.g. an export of another tool)."""

    paths: list[PathIn] = Field(min_length=1, max_length=200_000)
    models: list[ModelName] = Field(default_factory=lambda: list(ALL_MODELS), min_length=1, max_length=50)
    half_life_days: float = Field(default=7.0, gt=0, le=3650)
    markov_order: int = Field(default=1, ge=1, le=4)
    shapley_game: Literal["conversions", "rate"] = "conversions"
    collapse_repeats: bool = False
    spend: dict[str, Annotated[int, Field(ge=0, le=MAX_MINOR)]] = Field(
        default_factory=dict, description="Spend per channel, minor units.")


class CurveIn(BaseModel):
    """A channel's response curve and bounds."""

    channel: str = Field(min_length=1, max_length=200)
    kind: Literal["hill", "exponential", "power"] = "hill"
    beta: float = Field(gt=0, le=MAX_MINOR, allow_inf_nan=False, description="Outcome at saturation.")
    k: float = Field(gt=0, le=MAX_MINOR, allow_inf_nan=False,
                     description="Spend scale (minor units): half saturation for hill.")
    s: float = Field(default=1.0, gt=0, le=10, description="Hill shape.")
    lower: int = Field(default=0, ge=0, le=MAX_MINOR)
    upper: int | None = Field(default=None, ge=0, le=MAX_MINOR)
    current: int | None = Field(default=None, ge=0, le=MAX_MINOR,
                                description="Today's spend, to compare the answer with.")

    @model_validator(mode="after")
    def _bounds(self) -> CurveIn:
        if self.upper is not None and self.upper < self.lower:
            raise ValueError("upper: must be at least lower")
        return self


class BudgetRequest(BaseModel):
    """Split ``total`` over the channels."""

    total: int = Field(ge=0, le=MAX_MINOR, description="Budget, minor units.")
    reserve_share: float = Field(default=0.0, ge=0, lt=1, description="Held back (机动预算), 0–1.")
    curves: list[CurveIn] = Field(min_length=1, max_length=200)
