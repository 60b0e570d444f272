"""Console pages of insight: the Overview (``overview.py``) and the analyses (``analyses.py``:
RFM, funnel, cohorts, lifecycle, CLV). ``router`` serves them all."""

from fastapi import APIRouter

from growthwheel.insight.pages import analyses, overview

router = APIRouter(include_in_schema=False)
router.include_router(overview.router)
router.include_router(analyses.router)

__all__ = ["analyses", "overview", "router"]
