"""The project's exception hierarchy.

Every error reelflow raises on purpose is a `ReelflowError`. Lower layers (the `openai`
SDK, PIL, fsspec, YAML) are translated once, where they are called, and chained with
`from e`, so callers only ever need to know these types.
"""

from __future__ import annotations


class ReelflowError(Exception):
    """Base class of every error reelflow raises on purpose."""


class UserError(ReelflowError):
    """A mistake the user can fix (plan, image, setting): shown as one line, no traceback."""


class PlanError(UserError):
    """The scene plan is invalid; `problems` lists every finding, each naming file, scene and field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class ImageError(UserError):
    """A reference image cannot be read or prepared."""


class ProfileError(UserError):
    """A provider profile is missing or malformed."""


class ApiError(ReelflowError):
    """A call to the video API failed."""

    transient = False

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        self.code = code
        self.status = status
        super().__init__(message)


class TransientApiError(ApiError):
    """Worth retrying: rate limits, server errors, timeouts, dropped connections."""

    transient = True


class RateLimitedError(TransientApiError):
    """The provider refused the request for its rate or concurrency limit, so nothing was created: safe to
    send again after `retry_after` seconds, even for a job-creating request."""

    def __init__(self, message: str, *, retry_after: float, code: str | None = None, status: int | None = None
                 ) -> None:
        super().__init__(message, code=code, status=status)
        self.retry_after = retry_after


class NoAnswerError(TransientApiError):
    """The request went out and its answer never came (a broken connection, a read timeout): what it asked
    may have been done. Sent again, a create may be paid twice, unless the lost job can be found."""


class PermanentApiError(ApiError):
    """Retrying cannot help: rejected requests, moderation blocks, missing resources."""


class UnknownJobError(PermanentApiError):
    """A create's answer was lost and the provider cannot be asked whether it made the job (it lists no
    jobs): the step is left "unknown, may be paid" for the user to resolve, never paid again unasked."""


class AssetsExpiredError(PermanentApiError):
    """The provider no longer has a finished job's files (it keeps them for a while, then deletes them): only
    a new job can bring them back."""


class JobGoneError(PermanentApiError):
    """The provider does not know a job that was recorded as made (it answers 404 for it, again and again): it
    expired, it was made with another account or on another server (an embedded sandbox started afresh)."""


class DeliveryError(TransientApiError):
    """A finished, paid job's file could not be fetched (the provider refused, cut or lost the download): asked for
    again, never paid for again."""


class ProviderUnusableError(PermanentApiError):
    """The provider cannot be used at all, for any scene: the whole run stops at once."""


class AuthenticationError(ProviderUnusableError):
    """The provider rejected the API key: stop the whole run at once."""


class ProviderUnreachableError(ProviderUnusableError):
    """No connection to the provider could be made (refused, no such host, no route): nothing was sent, so
    nothing was made or paid, and waiting as for a 5xx cannot help: stop the whole run at once."""


class ProviderOutageError(ApiError):
    """The provider has been failing (5xx, timeouts) for longer than a scene of a plan with routes waits: its next
    create is not sent there (nothing is, so nothing is paid), and the scene moves to its next route."""


class VideoFailedError(PermanentApiError):
    """The provider finished the job as failed (e.g. `moderation_blocked`).

    Waiting again cannot help, so it is never retried as such; when `cause_may_pass` (a server-side
    generation error, say) a new job may be created instead."""

    def __init__(self, message: str, *, code: str | None = None, cause_may_pass: bool = False) -> None:
        super().__init__(message, code=code)
        self.cause_may_pass = cause_may_pass


class StorageError(ReelflowError):
    """Reading or writing the output storage failed; `transient` when waiting may mend it (a dropped
    connection), not for a full disk, a read-only folder or missing credentials."""

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient


def is_transient(error: BaseException) -> bool:
    """True for failures a retry may fix; used by every task's `retry_condition_fn`."""
    if isinstance(error, StorageError):
        return error.transient
    return isinstance(error, TransientApiError | TimeoutError)
