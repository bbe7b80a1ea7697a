"""Request and response models of the A/B endpoints (the OpenAPI contract)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

ModelId = Field(min_length=1, max_length=26, pattern=r"^[A-Za-z0-9._\-]+$")


class ABTestCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")  # like the event bodies: an unknown field is a 422 naming it

    treatment_model_id: str = ModelId
    control_model_id: str = ModelId
    duration_hours: float = Field(default=24.0, gt=0, le=24 * 90, description="how long the test runs")
    treatment_fraction: float = Field(default=0.2, gt=0, lt=1, description="share of users in the treatment arm")


class ABTestCreated(BaseModel):
    test_id: int
    start_time: str
    end_time: str
    metrics_dashboard: str = Field(description="URL of the test's HTML dashboard")
    request_id: str


class ABTestView(BaseModel):
    test_id: int
    status: str = Field(description="RUNNING | COMPLETED | STOPPED")
    control_model_id: str
    treatment_model_id: str
    treatment_fraction: float
    start_time: str
    end_time: str
    num_users: int
    control_ctr: float | None
    treatment_ctr: float | None
    pvalue: float | None
    winner: str | None = Field(description="control | treatment | inconclusive (null before the first results)")
    results: dict[str, Any] = Field(description="per-arm counts, the CTR z-test, sample sizes, series, decision")
    metrics_dashboard: str
    request_id: str


class ABTestList(BaseModel):
    tests: list[ABTestView]
    request_id: str
