"""Synthesizes the CDK app once per session, offline and without Docker.

``CDK_DOCKER=/bin/false`` is set before the jsii runtime (Node) starts, so its child process
inherits it: any attempt to bundle with Docker fails loudly. The stack is environment-agnostic,
so synthesis reads no AWS credentials (``test_app_py_synthesizes_without_docker_or_aws_credentials``
runs ``app.py`` with none).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ["CDK_DOCKER"] = "/bin/false"
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from .synthesis import OVERRIDES, Synthesized, synthesize


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    """The app as ``cdk.json`` configures it."""
    yield synthesize(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def overridden(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    """The app with every setting in ``OVERRIDES`` changed through context."""
    yield synthesize(tmp_path_factory.mktemp("cdk.out.overridden"), OVERRIDES)


@pytest.fixture(scope="session", params=["defaults", "overridden"])
def each_configuration(request: pytest.FixtureRequest) -> Synthesized:
    """Both configurations, for properties that must hold whatever the context says."""
    fixture: Synthesized = request.getfixturevalue(
        "synthesized" if request.param == "defaults" else "overridden"
    )
    return fixture
