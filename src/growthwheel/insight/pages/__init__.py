"""Console pages of insight: the Overview (``overview.py``), RFM (``rfm.py``) and the analyses
(``analyses.py``: funnel, cohorts, lifecycle, CLV). ``router`` serves them all."""

from fastapi import APIRouter

from growthwheel.insight.pages import analyses, overview, rfm

router = APIRouter(include_in_schema=False)
router.include_router(overview.router)
router.include_router(analyses.router)  # includes rfm.router

__all__ = ["analyses", "overview", "rfm", "router"]
