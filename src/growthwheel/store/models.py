"""Imports every domain's tables so that ``Base.metadata`` knows them all (for Alembic)."""

from growthwheel.accounts import models as accounts_models  # noqa: F401
from growthwheel.alerts import models as alerts_models  # noqa: F401
from growthwheel.experiments import models as experiments_models  # noqa: F401
from growthwheel.facts import models as facts_models  # noqa: F401
from growthwheel.inventory import models as inventory_models  # noqa: F401
from growthwheel.jobs import models as jobs_models  # noqa: F401
from growthwheel.journeys import models as journeys_models  # noqa: F401
from growthwheel.journeys.channels import models as channels_models  # noqa: F401
from growthwheel.loyalty import models as loyalty_models  # noqa: F401
from growthwheel.marketing.campaigns import models as campaigns_models  # noqa: F401
from growthwheel.marketing.influencers import models as influencers_models  # noqa: F401
from growthwheel.promotions import models as promotions_models  # noqa: F401
from growthwheel.recs import models as recs_models  # noqa: F401
from growthwheel.segments import models as segments_models  # noqa: F401
from growthwheel.social import models as social_models  # noqa: F401
from growthwheel.surveys import models as surveys_models  # noqa: F401
from growthwheel.voice import models as voice_models  # noqa: F401
