"""Review platforms: Google Business Profile, Trustpilot, and exports from platforms without an
API (Naver, Kakao, ...)."""

from backend.adapters.reviews.export import (
    ReviewColumns,
    ReviewExportAdapter,
    ReviewExportCheckpoint,
    ReviewExportCredentials,
    ReviewExportSettings,
)
from backend.adapters.reviews.google_business import (
    GoogleBusinessCredentials,
    GoogleBusinessReviewsAdapter,
    GoogleBusinessSettings,
    GoogleReviewsCheckpoint,
)
from backend.adapters.reviews.trustpilot import (
    TrustpilotCheckpoint,
    TrustpilotCredentials,
    TrustpilotReviewsAdapter,
    TrustpilotSettings,
)

__all__ = [
    "GoogleBusinessCredentials",
    "GoogleBusinessReviewsAdapter",
    "GoogleBusinessSettings",
    "GoogleReviewsCheckpoint",
    "ReviewColumns",
    "ReviewExportAdapter",
    "ReviewExportCheckpoint",
    "ReviewExportCredentials",
    "ReviewExportSettings",
    "TrustpilotCheckpoint",
    "TrustpilotCredentials",
    "TrustpilotReviewsAdapter",
    "TrustpilotSettings",
]
