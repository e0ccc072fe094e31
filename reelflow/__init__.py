"""reelflow: Prefect pipelines that turn scene plans into finished videos through the video APIs people buy today."""

from .costs import BudgetExceeded, Estimate, estimate
from .errors import (
    ApiError,
    AssetsExpiredError,
    AuthenticationError,
    ImageError,
    NoAnswerError,
    PermanentApiError,
    PlanError,
    ProfileError,
    ProviderUnreachableError,
    ProviderUnusableError,
    RateLimitedError,
    ReelflowError,
    StorageError,
    TransientApiError,
    UnknownJobError,
    UserError,
    VideoFailedError,
    is_transient,
)
from .media.images import Crop
from .plans import (
    Extension,
    Plan,
    ResolvedScene,
    Scene,
    SceneDefaults,
    load_plan,
    parse_plan,
    plan_warnings,
    validate_plan,
)
from .profiles import ProviderProfile, builtin_profile_names, load_profile
from .prompts import PromptFields, StyleBlock, compose
from .settings import Settings

__all__ = [
    "ApiError",
    "AssetsExpiredError",
    "AuthenticationError",
    "BudgetExceeded",
    "Crop",
    "Estimate",
    "Extension",
    "ImageError",
    "NoAnswerError",
    "PermanentApiError",
    "Plan",
    "PlanError",
    "ProfileError",
    "PromptFields",
    "ProviderProfile",
    "ProviderUnreachableError",
    "ProviderUnusableError",
    "RateLimitedError",
    "ReelflowError",
    "ResolvedScene",
    "Scene",
    "SceneDefaults",
    "Settings",
    "StorageError",
    "StyleBlock",
    "TransientApiError",
    "UnknownJobError",
    "UserError",
    "VideoFailedError",
    "builtin_profile_names",
    "compose",
    "estimate",
    "is_transient",
    "load_plan",
    "load_profile",
    "parse_plan",
    "plan_warnings",
    "validate_plan"
]
