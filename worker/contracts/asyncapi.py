"""The AsyncAPI 3 document of the contract, generated from the same tables as schemas/.

It describes the exchanges, routing keys, who publishes and who consumes each message, and refers
to the JSON Schema files instead of copying them. Written by `kmo-worker schemas` to
schemas/asyncapi/kmo-worker.asyncapi.json; validated in CI with @asyncapi/parser.
"""

from __future__ import annotations

from typing import Any

from worker import __version__
from worker.contracts import dead_letters, roles, versions
from worker.contracts.inbound import INBOUND
from worker.contracts.outbound import OUTBOUND

FILE = "asyncapi/kmo-worker.asyncapi.json"
CHANNELS = {
    "inbound": ("kmo.inbound", "Messages for the worker. Routing key = CloudEvents `type`."),
    "events": ("kmo.events", "Decisions and notices for the mailers, operational events."),
    "deadLetters": ("kmo.dead-letter", "What the worker could not handle, body unchanged."),
}


def _name(type_name: str) -> str:
    head, *rest = type_name.replace("_", ".").split(".")
    return head + "".join(part.capitalize() for part in rest)


def _consumers(type_name: str) -> str:
    if type_name.startswith("message."):
        return "operations, queue `kmo.operations` (binding `message.#`)"
    return "the mailers, queue `kmo.mailer` (bindings `decision.#`, `notice.#`)"


def _message(type_name: str, direction: str) -> dict[str, Any]:
    who = roles.publisher_of(type_name) if direction == "inbound" else "the registration worker"
    consumer = "the registration worker" if direction == "inbound" else _consumers(type_name)
    return {
        "name": type_name,
        "title": f"{type_name} {versions.CURRENT[type_name]}",
        "contentType": "application/cloudevents+json",
        "summary": f"Published by {who}; consumed by {consumer}.",
        "payload": {
            "schemaFormat": "application/schema+json;version=draft-07",
            "schema": {"$ref": f"../{type_name}.json"},
        },
        "bindings": {"amqp": {"messageType": type_name, "bindingVersion": "0.3.0"}},
        "x-kmo-version": versions.CURRENT[type_name],
        "x-kmo-dataschema": versions.uri(type_name),
        "x-published-by": who,
        "x-consumed-by": consumer,
    }


def _exchange(address: str, description: str) -> dict[str, Any]:
    return {
        "address": address,
        "description": description,
        "bindings": {
            "amqp": {
                "is": "routingKey",
                "exchange": {
                    "name": address,
                    "type": "topic",
                    "durable": True,
                    "autoDelete": False,
                    "vhost": "/",
                },
                "bindingVersion": "0.3.0",
            }
        },
        "messages": {},
    }


def document() -> dict[str, Any]:
    channels = {key: _exchange(*value) for key, value in CHANNELS.items()}
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for direction, types, channel, action in (
        ("inbound", INBOUND, "inbound", "receive"),
        ("outbound", OUTBOUND, "events", "send"),
    ):
        for type_name in sorted(types):
            name = _name(type_name)
            messages[name] = _message(type_name, direction)
            channels[channel]["messages"][name] = {"$ref": f"#/components/messages/{name}"}
            operations[f"{action}{name[0].upper()}{name[1:]}"] = {
                "action": action,
                "channel": {"$ref": f"#/channels/{channel}"},
                "summary": messages[name]["summary"],
                "messages": [{"$ref": f"#/channels/{channel}/messages/{name}"}],
                "bindings": {
                    "amqp": {"cc": [type_name], "deliveryMode": 2, "bindingVersion": "0.3.0"}
                },
            }
    messages["deadLetter"] = {
        "name": "dead letter",
        "summary": "The original delivery, body unchanged, with why it could not be handled.",
        "headers": {
            "type": "object",
            "required": ["x-kmo-reason", "x-kmo-failed-at", "x-kmo-worker-version"],
            "properties": {
                "x-kmo-reason": {"enum": list(dead_letters.REASONS)},
                "x-kmo-error": {
                    "type": "string",
                    "description": "what is wrong, e.g. a JSON pointer and the schema message",
                },
                "x-kmo-failed-at": {"type": "string", "format": "date-time"},
                "x-kmo-worker-version": {"type": "string"},
                "x-kmo-original-exchange": {"type": "string"},
                "x-kmo-original-routing-key": {"type": "string"},
                "x-kmo-original-user-id": {"type": "string"},
            },
        },
        "payload": {"description": "whatever the original message held"},
    }
    channels["deadLetters"]["messages"]["deadLetter"] = {"$ref": "#/components/messages/deadLetter"}
    operations["sendDeadLetter"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/deadLetters"},
        "summary": "Moved here by the worker; read and replayed with `kmo-worker dead-letters`.",
        "messages": [{"$ref": "#/channels/deadLetters/messages/deadLetter"}],
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "kmo-portefeuille registration worker",
            "version": __version__,
            "description": (
                "Registration of service providers for the Flemish SME wallet. Every message is"
                " a CloudEvents 1.0 structured-JSON object; its `type` is the AMQP routing key."
                " The JSON Schemas in this folder's parent are the contract."
            ),
        },
        "defaultContentType": "application/cloudevents+json",
        "servers": {
            "rabbitmq": {
                "host": "rabbitmq:5672",
                "protocol": "amqp",
                "protocolVersion": "0-9-1",
                "description": (
                    "Publishers set the AMQP `user_id` property; RabbitMQ checks it against"
                    " the connection's user."
                ),
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }
