"""The emulator's settings: limits, faults and the switches for behaviour Stripe does not document.

Every field can be changed while the emulator runs (``POST /_emulator/config`` or
:meth:`EmulatorServer.configure`). Shares are probabilities in ``0..1``; ``*_applies`` fields take
``true``/``false`` or a share of the affected requests.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["EmulatorConfig", "GatewayAnswer", "Share"]

Share = Annotated[float, Field(ge=0.0, le=1.0)]
GatewayAnswer = Literal["502", "504", "200_html", "200_other_session"]


class EmulatorConfig(BaseModel):
    """Limits, seeded faults and policy switches of one emulator instance.

    Args:
        rate_limit: Requests per ``rate_window_seconds`` per account (0 turns the limiter off; a
            fractional limit admits its ceiling per window).
        rate_window_seconds: Length of the sliding rate-limit window, in seconds.
        lock_wait_ms: How long a write waits for a busy session before 429 ``lock_timeout``.
        allow_update_any_status: Accept updates outside ``requires_input`` (never when redacted).
        allow_metadata_update_any_status: Accept metadata-only updates in any unredacted status.
        idempotency_ttl_seconds: How long an idempotency key is kept.
        seed: Seed of the fault draws; the same seed gives the same faults.
        faults_on_reads: Apply latency and faults to retrieve and list as well as to updates.
        latency_ms: Mean added latency of an affected request, in milliseconds.
        latency_jitter_ms: Uniform jitter around ``latency_ms``, in milliseconds.
        fail_503_rate: Share of requests refused with 503 before execution.
        fail_500_after_rate: Share of updates applied and then answered with a stored 500.
        hang_rate: Share of requests answered only after ``hang_seconds``.
        hang_seconds: How long a hung request is held, in seconds.
        hang_applies: Whether (or how often) a hung update is applied.
        drop_rate: Share of requests whose connection is closed mid-response.
        drop_applies: Whether (or how often) a dropped update is applied.
        lock_timeout_rate: Share of writes answered 429 ``lock_timeout`` without contention.
        gateway_rate: Share of requests answered by a gateway in front of Stripe (a proxy, a
            load balancer) instead of by Stripe: no Stripe headers, no Stripe error body.
        gateway_answer: What the gateway answers: ``502`` or ``504`` with an HTML page,
            ``200_html`` (an HTML page with status 200), or ``200_other_session`` (200 with
            another session's JSON, as a misrouting cache would).
        gateway_applies: Whether (or how often) Stripe still gets the request behind the gateway.
        gateway_delay_seconds: How long after the gateway's answer Stripe executes the request
            (0: before the answer; more: the client may read back before the change lands).
        api_versions: ``Stripe-Version`` values accepted besides the known ones (an account
            pinned to an older release, say); any other version is refused with 400.
        redaction_seconds: How long a redaction stays ``processing`` before it is ``redacted``
            (Stripe: up to four days; 0: the redact answer says processing, the next read
            redacted).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate_limit: float = Field(default=25.0, ge=0)
    rate_window_seconds: float = Field(default=1.0, gt=0)
    lock_wait_ms: float = Field(default=0.0, ge=0)
    allow_update_any_status: bool = False
    allow_metadata_update_any_status: bool = False
    idempotency_ttl_seconds: float = Field(default=86_400.0, gt=0)
    seed: int = 0
    faults_on_reads: bool = False
    latency_ms: float = Field(default=0.0, ge=0)
    latency_jitter_ms: float = Field(default=0.0, ge=0)
    fail_503_rate: Share = 0.0
    fail_500_after_rate: Share = 0.0
    hang_rate: Share = 0.0
    hang_seconds: float = Field(default=90.0, ge=0)
    hang_applies: bool | Share = True
    drop_rate: Share = 0.0
    drop_applies: bool | Share = True
    lock_timeout_rate: Share = 0.0
    gateway_rate: Share = 0.0
    gateway_answer: GatewayAnswer = "502"
    gateway_applies: bool | Share = True
    gateway_delay_seconds: float = Field(default=0.0, ge=0)
    api_versions: tuple[str, ...] = ()
    redaction_seconds: float = Field(default=0.0, ge=0)

    @property
    def has_faults(self) -> bool:
        """Whether any latency or fault is configured (the hot path skips the draw otherwise)."""
        return (
            self.latency_ms > 0
            or self.latency_jitter_ms > 0
            or self.fail_503_rate > 0
            or self.fail_500_after_rate > 0
            or self.hang_rate > 0
            or self.drop_rate > 0
            or self.lock_timeout_rate > 0
            or self.gateway_rate > 0
        )
