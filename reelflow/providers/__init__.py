"""Video providers as plugins.

A provider *dialect* is one API's wire format in one module behind the small `VideoProvider` interface
(submit a job, poll it, download its files, find a job whose create answer was lost, create a character,
describe a request for the dry run, check the key and the models offered for `reelflow doctor`); a provider
*profile* (`reelflow.profiles`) names the dialect it speaks and holds every limit, price and capability.
Dialects are found by name (`dialect()`), imported only when used, and a third party adds one through the
`reelflow.dialects` entry-point group (see `_registry`).

The built-in ones are the registry's entries (`dialect_entries()`): each names its class, its SDK's package, the
sandbox pose that speaks it and the profile its contract runs against."""

from ._base import (
    Body,
    Capabilities,
    ClipJob,
    ExtensionJob,
    ImageTransport,
    JobSpec,
    JobState,
    ProviderConfig,
    Reference,
    RevisionJob,
    Status,
    Variant,
    VideoProvider,
    WireRequest,
    action_of,
)
from ._choice import (
    Choice,
    active_profile,
    announcement,
    choose_provider,
    credentialed,
    going_live,
    live_variables,
    picking,
)
from ._connect import (
    SANDBOX,
    Access,
    Connection,
    check_capabilities,
    check_images,
    check_settings,
    checked_profile,
    connect_provider,
    environment,
    image_delivery,
    key_variables,
    open_gateway,
    provider_access,
    provider_key,
    uses_embedded_sandbox,
)
from ._gateway import Batching, BatchState, Downloaded, Gateway, Pacer
from ._registry import (
    ENTRY_POINT_GROUP,
    DialectEntry,
    dialect,
    dialect_entries,
    known_dialects,
    pose_of,
    posed_dialects,
    register_dialect,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "SANDBOX",
    "Access",
    "BatchState",
    "Batching",
    "Body",
    "Capabilities",
    "Choice",
    "ClipJob",
    "Connection",
    "DialectEntry",
    "Downloaded",
    "ExtensionJob",
    "Gateway",
    "ImageTransport",
    "JobSpec",
    "JobState",
    "Pacer",
    "ProviderConfig",
    "Reference",
    "RevisionJob",
    "Status",
    "Variant",
    "VideoProvider",
    "WireRequest",
    "action_of",
    "active_profile",
    "announcement",
    "check_capabilities",
    "check_images",
    "check_settings",
    "checked_profile",
    "choose_provider",
    "connect_provider",
    "credentialed",
    "dialect",
    "dialect_entries",
    "environment",
    "going_live",
    "image_delivery",
    "key_variables",
    "known_dialects",
    "live_variables",
    "open_gateway",
    "picking",
    "pose_of",
    "posed_dialects",
    "provider_access",
    "provider_key",
    "register_dialect",
    "uses_embedded_sandbox"
]
