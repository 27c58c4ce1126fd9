import os

import pytest
from hypothesis import settings

import acd
from acd._reference import ReferenceEngine

# CI runs more examples; `ACD_HYPOTHESIS=ci` (see .ci/run)
settings.register_profile("ci", max_examples=1500, deadline=None)
settings.register_profile("dev", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("ACD_HYPOTHESIS", "dev"))


@pytest.fixture(params=["core", "reference"])
def engine_cls(request):
    """Both implementations: every behavioural test runs on each."""
    return acd.Engine if request.param == "core" else ReferenceEngine
