"""Video providers as plugins.

A provider *dialect* is one API's wire format in one module behind the small `VideoProvider` interface
(submit a job, poll it, download its files, find a job whose create answer was lost, create a character,
describe a request for the dry run); a provider *profile* (`reelflow.profiles`) names the dialect it speaks
and holds every limit, price and capability. Dialects are found by name (`dialect()`), imported only when
used, and a third party adds one through the `reelflow.dialects` entry-point group (see `_registry`).

Built in: `openai-videos` (OpenAI's `/v1/videos`, as LiteLLM and other gateways serve it) and
`openrouter-videos` (OpenRouter's `/api/v1/videos`)."""

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
from ._connect import (
    Connection,
    active_profile,
    active_profile_name,
    check_capabilities,
    check_images,
    check_settings,
    connect_provider,
    image_delivery,
    key_variables,
    open_gateway,
    provider_key,
    sandbox_notice,
    uses_embedded_sandbox,
)
from ._gateway import Batching, BatchState, Downloaded, Gateway, Pacer
from ._registry import ENTRY_POINT_GROUP, dialect, known_dialects, register_dialect

__all__ = [
    "ENTRY_POINT_GROUP",
    "BatchState",
    "Batching",
    "Body",
    "Capabilities",
    "ClipJob",
    "Connection",
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
    "active_profile_name",
    "check_capabilities",
    "check_images",
    "check_settings",
    "connect_provider",
    "dialect",
    "image_delivery",
    "key_variables",
    "known_dialects",
    "open_gateway",
    "provider_key",
    "register_dialect",
    "sandbox_notice",
    "uses_embedded_sandbox"
]
