"""Python client for the AZR verification service (API v1)."""

from azr_client._core import (
    AuthenticationError,
    RetryPolicy,
    ServiceUnavailableError,
    VerificationClientError,
)
from azr_client.aio import AsyncVerificationClient
from azr_client.models import (
    VERDICTS,
    AbductionAnswer,
    Answer,
    Case,
    DeductionAnswer,
    InductionAnswer,
    JobStatus,
    ValidateResult,
    ValidateTask,
    VerifyResult,
)
from azr_client.sync import VerificationClient

__all__ = [
    "VERDICTS",
    "AbductionAnswer",
    "Answer",
    "AsyncVerificationClient",
    "AuthenticationError",
    "Case",
    "DeductionAnswer",
    "InductionAnswer",
    "JobStatus",
    "RetryPolicy",
    "ServiceUnavailableError",
    "ValidateResult",
    "ValidateTask",
    "VerificationClient",
    "VerificationClientError",
    "VerifyResult",
]
__version__ = "0.1.0"
