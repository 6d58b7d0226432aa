"""A supervisor's token resend, with its outcome: offered only where the hub allows it
(hub/lifecycle.RESENDABLE: the token went out, or was about to, and the meter has not said
it applied it), and every attempt written to the audit log with its result, whether the
hub resent, refused or is not attached to this app."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from operator_data.api.auth import Principal
from operator_data.api.deps import AppContext, audit
from operator_data.api.providers import ActionUnavailable
from operator_data.hub.lifecycle import RESENDABLE
from operator_data.registry import RegistryError
from operator_data.store import IllegalTransition, NotFound, schema

#: Outcome codes, shown as fixed texts (i18n keys resend_<code>) on the outcome page.
OUTCOMES = ("resent", "not_allowed", "unavailable", "refused")


@dataclass(frozen=True, slots=True)
class ResendOutcome:
    transaction_id: str
    outcome: str  # one of OUTCOMES
    state: str  # the purchase's state when asked
    detail: str


def allowed(state: str) -> bool:
    return state in {s.value for s in RESENDABLE}


async def current_state(ctx: AppContext, transaction_id: str) -> str:
    t = schema.transactions
    async with ctx.store.read() as conn:
        state = await conn.scalar(select(t.c.state).where(t.c.id == transaction_id))
    if state is None:
        raise NotFound(f"transaction {transaction_id} does not exist")
    return str(state)


async def resend(
    ctx: AppContext, principal: Principal, transaction_id: str, reason: str
) -> ResendOutcome:
    state = await current_state(ctx, transaction_id)
    if not allowed(state):
        outcome = ResendOutcome(
            transaction_id,
            "not_allowed",
            state,
            f"transaction is {state}: only a token issued and not yet answered by the "
            f"meter can be resent ({', '.join(sorted(s.value for s in RESENDABLE))})",
        )
    else:
        try:
            done = await ctx.actions.resend_token(transaction_id, principal.name, reason)
            outcome = ResendOutcome(transaction_id, "resent", state, done)
        except ActionUnavailable as error:
            outcome = ResendOutcome(transaction_id, "unavailable", state, str(error))
        except (RegistryError, IllegalTransition) as error:
            # The hub re-checks under the meter's lock: the state may have moved meanwhile.
            outcome = ResendOutcome(transaction_id, "refused", state, str(error))
    await audit(
        ctx,
        principal,
        "action.resend_token",
        "transaction",
        transaction_id,
        {"reason": reason, "result": outcome.outcome, "state": state, "detail": outcome.detail},
    )
    return outcome
