"""ServiceNow Table API: incidents with comments and work notes, knowledge articles."""

from backend.adapters.servicenow.adapter import (
    ServiceNowAdapter,
    ServiceNowCheckpoint,
    ServiceNowCredentials,
    ServiceNowPhase,
    ServiceNowSettings,
)

__all__ = [
    "ServiceNowAdapter",
    "ServiceNowCheckpoint",
    "ServiceNowCredentials",
    "ServiceNowPhase",
    "ServiceNowSettings",
]
