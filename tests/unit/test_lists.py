"""Roles, what they may publish, and dead-letter reasons are each declared once; everything that
states them (settings, intake, the AsyncAPI document, the Helm chart's schema) follows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

from worker.config import Publisher
from worker.contracts import asyncapi, dead_letters, roles
from worker.contracts.inbound import INBOUND
from worker.observability import metrics

ROOT = Path(__file__).resolve().parents[2]


def test_every_inbound_type_has_one_publishing_role_and_every_publisher_may_retract() -> None:
    """R17: a message is retracted by its publisher (or the back office), so every role that
    publishes may publish `message.retracted`; every other type has one role."""
    for type_name in INBOUND:
        granted = [role for role, grant in roles.GRANTS.items() if type_name in grant.publishes]
        if type_name == "message.retracted":
            assert granted == [role for role in roles.ROLES if roles.GRANTS[role].publishes]
            assert len(granted) == 3
        else:
            assert len(granted) == 1, (type_name, granted)
    assert set(roles.GRANTS) == set(roles.ROLES)


def test_settings_and_the_helm_chart_know_the_same_roles() -> None:
    assert set(get_args(Publisher.model_fields["role"].annotation)) == set(roles.ROLES)
    schema = json.loads((ROOT / "helm/kmo-worker/values.schema.json").read_text())
    publisher = schema["properties"]["config"]["properties"]["publishers"]["additionalProperties"]
    assert publisher["properties"]["role"]["enum"] == list(roles.ROLES)


def test_the_asyncapi_document_names_the_reasons_and_publishers_of_the_one_list() -> None:
    document = asyncapi.document()
    headers = document["components"]["messages"]["deadLetter"]["headers"]["properties"]
    assert headers["x-kmo-reason"]["enum"] == list(dead_letters.REASONS)
    audit = document["components"]["messages"]["auditReported"]
    assert audit["x-published-by"] == roles.GRANTS["audit_bureau"].who


def test_a_routing_key_the_contract_does_not_know_is_labelled_other() -> None:
    assert metrics.inbound_type("audit.reported") == "audit.reported"
    assert metrics.inbound_type("x.y" * 40) == metrics.OTHER
    assert metrics.inbound_type(None) == metrics.OTHER
