"""The transport API carried over MQTT v5 (see docs/bus.md for topics, payloads, security).

`GatewayBridge` runs on a gateway node in front of its `SpooledGateway`; `MqttTransport` is
what a hub worker holds: a `Transport` like any other, whose events come from every gateway
through a shared subscription, so adding a worker adds capacity.
"""

from gateway.mqtt.bridge import GatewayBridge
from gateway.mqtt.connection import MqttSettings
from gateway.mqtt.hub_transport import MqttTransport
from gateway.mqtt.topics import Topics

__all__ = ["GatewayBridge", "MqttSettings", "MqttTransport", "Topics"]
