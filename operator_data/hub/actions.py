"""The supervisor actions of the helpdesk, with the one that needs the hub: a resend."""

from __future__ import annotations

from typing import TYPE_CHECKING

from operator_data.api.providers import RegistryActions

if TYPE_CHECKING:
    from operator_data.hub.hub import Hub


class HubActions(RegistryActions):
    def __init__(self, hub: Hub) -> None:
        super().__init__(hub.ctx.registry)
        self._hub = hub

    async def resend_token(self, transaction_id: str, actor: str, reason: str) -> str:
        return await self._hub.resend_token(transaction_id, actor, reason)
