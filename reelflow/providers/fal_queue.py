"""The `fal-queue` dialect: fal.ai's queue (`queue.fal.run`), where every model has inputs of its own.

A create is `POST {base}/{endpoint id}` with the model's own inputs, as the model's map in the profile writes
them (`reelflow.profiles.Endpoint`); it answers a `request_id`. The request is then `IN_QUEUE` (with its
`queue_position`), `IN_PROGRESS`, `COMPLETED`; a failed one completes too, and its result answers the error
(a 422 listing each refused input, a 5xx for an infrastructure failure). Status and result are read through
`fal-client`'s request handle (its retries of what is safe to repeat, its status parsing, its errors); the
create is sent once by this module (`fal_client.AsyncClient.submit` retries on a lost connection, and a
retried create may be paid twice), and results are downloaded from their CDN URL without the key. Images go
as URLs: presigned ones when the output can sign them, else uploaded with `fal_client`'s `upload` to fal's
storage (the sandbox's, when the queue is not fal's own). Sources: docs.fal.ai/model-endpoints/queue,
fal.ai/docs/documentation/model-apis/errors and request-errors, and the `fal-client` 1.0.3 source."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

import fal_client
import fal_client.client as fal_hosts
import httpx
from fal_client.client import AppId, AsyncRequestHandle, Completed, FalClientHTTPError, Queued

from ..errors import (
    ApiError,
    PermanentApiError,
)
from ..profiles import Endpoint, ProviderProfile, Quantity, frame_of
from ._base import (
    Body,
    Capabilities,
    ClipJob,
    JobSpec,
    JobState,
    ProviderConfig,
    Reference,
    Variant,
    WireRequest,
    action_of,
)
from ._http import status_error, streamed, transport_error

_REQUESTS = "/requests/"
# Infrastructure failures that a new request may not meet (fal.ai/docs/documentation/model-apis/request-errors)
_PASSING = {"request_timeout", "startup_timeout", "runner_scheduling_failure", "runner_connection_timeout",
            "runner_disconnected", "runner_connection_refused", "runner_connection_error",
            "runner_incomplete_response", "runner_server_error", "internal_error"}


class FalQueue:
    """fal's queue: creates sent once over httpx, status and results through `fal_client`."""

    dialect: ClassVar[str] = "fal-queue"
    capabilities: ClassVar[Capabilities] = Capabilities(last_frame=True, audio_switch=True, seed=True,
                                                        negative_prompt=True, input_maps=True, variants=("video",),
                                                        images="url-or-upload")

    def __init__(self, config: ProviderConfig) -> None:
        assert config.api_key is not None and config.base_url is not None  # (the connection makes sure)
        self.base_url = config.base_url.rstrip("/")
        self.profile = config.profile
        self.key_variable = config.profile.credentials.api_key
        key = config.api_key.get_secret_value()
        self.queue = httpx.AsyncClient(headers={"Authorization": f"Key {key}"}, timeout=config.timeout_seconds)
        self.cdn = httpx.AsyncClient(timeout=config.timeout_seconds, follow_redirects=True)  # never the key
        self.storage = fal_client.AsyncClient(key=key, default_timeout=config.timeout_seconds)
        # fal's storage is its own host; a queue elsewhere (the sandbox, a proxy) serves the storage routes too
        self.storage_url = None if self.base_url == (config.profile.base_url or "").rstrip("/") else self.base_url

    async def submit(self, job: JobSpec) -> JobState:
        request = self.describe(job, self.profile)
        endpoint_id = request.route.removeprefix("POST /")
        async with self._translated(action_of(job)):
            fields = {name: await self._sent(value) for name, value in request.fields.items()}
            response = await self.queue.post(f"{self.base_url}/{endpoint_id}", json=fields)
            _raise_for(response)
            answer = response.json()
        return JobState(id=f"{endpoint_id}{_REQUESTS}{answer['request_id']}", status="queued",
                        queue_position=answer.get("queue_position"))

    async def poll(self, job_id: str) -> JobState:
        handle = self._handle(job_id)
        async with self._translated(f"check {job_id}"):
            status = await handle.status()
            if isinstance(status, Queued):
                return JobState(id=job_id, status="queued", queue_position=status.position)
            if not isinstance(status, Completed):
                return JobState(id=job_id, status="running")
            try:
                result = await handle.get()
            except FalClientHTTPError as e:
                if e.status_code in (401, 403, 429):
                    raise
                return _failed(job_id, e.status_code, e.message, e.error_type)
        if status.error:
            return _failed(job_id, 200, status.error, status.error_type)
        where = self._endpoint(job_id).video
        video = _found(result, where)
        if not isinstance(video, str):
            return JobState(id=job_id, status="failed", error_code="no_video",
                            error_message=f"the result has no video at {where}")
        return JobState(id=job_id, status="completed", progress=100, outputs=(video,))

    @contextlib.asynccontextmanager
    async def download(self, job: JobState, variant: Variant) -> AsyncIterator[Body]:
        """From the result's CDN URL, which needs no key (and is never sent one)."""
        action = f"download the {variant} of {job.id}"
        if not job.outputs:
            raise PermanentApiError(f"{action}: the result named no video")
        async with self._translated(action):
            response = await self.cdn.send(self.cdn.build_request("GET", job.outputs[0]), stream=True)
            try:
                _raise_for(response)
                yield streamed(response)
            finally:
                await response.aclose()

    async def find_lost(self, job: JobSpec, since: float, exclude: frozenset[str]) -> JobState | None:
        return None  # fal's queue lists no requests: a create whose answer was lost cannot be found again

    async def create_character(self, name: str, clip: Reference) -> str:
        raise PermanentApiError(f"create character {name!r}: fal's queue has no characters")

    async def check_access(self, models: list[str]) -> set[str] | None:
        """A token for fal's CDN, as `fal_client` asks one before an upload (fal-client 1.0.3
        `AsyncCDNTokenManager._refresh_token`: `POST {REST_URL}/storage/auth/token?storage_type=fal-cdn-v3` with
        the key): authenticated, and nothing is made or paid. fal's queue lists no models: None."""
        host = self.storage_url or fal_hosts.REST_URL
        async with self._translated("ask for an upload token"):
            _raise_for(await self.queue.post(f"{host}/storage/auth/token", params={"storage_type": "fal-cdn-v3"},
                                             json={}))
        return None

    @classmethod
    def describe(cls, job: JobSpec, profile: ProviderProfile) -> WireRequest:
        """The inputs of the endpoint of the job's model that takes what the job carries, as its map writes them."""
        if not isinstance(job, ClipJob):
            raise PermanentApiError(f"{action_of(job)}: fal's queue cannot continue or revise a video")
        limits = profile.model_limits(job.model)
        frame = frame_of(job.size, limits.aspect_ratios, limits.resolutions) if limits else None
        quantities: dict[Quantity, Any] = {
            "prompt": job.prompt, "seconds": job.seconds, "aspect_ratio": frame[0] if frame else None,
            "resolution": frame[1] if frame else None, "image": job.first_frame, "last_image": job.last_frame,
            "audio": job.audio if profile.takes(job.model, "audio") else None,  # (sound on is the default)
            "negatives": job.negative, "seed": job.seed}
        carried = {quantity for quantity, value in quantities.items() if value is not None}
        endpoint = limits.endpoint_for(carried) if limits else None
        if endpoint is None:
            raise PermanentApiError(f"{action_of(job)}: {job.model} on {profile.name} has no endpoint for a clip "
                                    f"with {', '.join(sorted(carried))}")
        return WireRequest(f"POST /{endpoint.id}", endpoint.encoded(quantities))

    @classmethod
    def describe_followup(cls, variants: list[Variant]) -> str:
        return ("GET /{app}/requests/{request_id}/status until COMPLETED; GET /{app}/requests/{request_id}; GET "
                "its video.url")

    async def close(self) -> None:
        await self.queue.aclose()
        await self.cdn.aclose()

    def _handle(self, job_id: str) -> AsyncRequestHandle:
        """The request's handle in `fal_client`, its URLs on this queue (`{owner}/{alias}/requests/{id}`: the
        endpoint's app, without the endpoint's path, as fal routes status and results)."""
        endpoint_id, _, request_id = job_id.rpartition(_REQUESTS)
        app = AppId.from_endpoint_id(endpoint_id)
        base = "/".join(filter(None, [self.base_url, app.namespace, app.owner, app.alias])) + _REQUESTS + request_id
        return AsyncRequestHandle(request_id=request_id, response_url=base, status_url=f"{base}/status",
                                  cancel_url=f"{base}/cancel", client=self.queue)

    def _endpoint(self, job_id: str) -> Endpoint:
        endpoint_id = job_id.rpartition(_REQUESTS)[0]
        found = self.profile.endpoint_named(endpoint_id)
        if found is None:
            raise PermanentApiError(f"check {job_id}: no model of profile {self.profile.name!r} has endpoint "
                                    f"{endpoint_id}")
        return found[2]

    async def _sent(self, value: Any) -> Any:
        """An image as fal fetches it: its presigned URL, else uploaded to fal's storage."""
        if not isinstance(value, Reference):
            return value
        if value.url is not None:
            return value.url
        with _storage_at(self.storage_url):
            # fal's v3 CDN alone: fal-client 1.0.3 falls back from it to its older storage (`upload`'s
            # `fallback_repository`), whose requests it retries ten times on a refused connection
            # (`_async_maybe_retry_request`), each fallback logged as a WARNING: half a minute and more before an
            # unreachable fal is told. The CDN's token request is not retried: a refused connection is said at once.
            return await self.storage.upload(value.data, value.media_type, value.filename, repository="fal_v3",
                                             fallback_repository=[])

    @contextlib.asynccontextmanager
    async def _translated(self, action: str) -> AsyncIterator[None]:
        try:
            yield
        except ApiError:
            raise
        except FalClientHTTPError as e:
            raise _error(action, e.status_code, _said(e.message), httpx.Headers(e.response_headers),
                         self.key_variable) from e
        except httpx.HTTPStatusError as e:  # fal_client's storage token request
            raise _error(action, e.response.status_code, e.response.text[:200], e.response.headers,
                         self.key_variable) from e
        except httpx.TransportError as e:  # timeouts too
            unreached = isinstance(e, httpx.ConnectError | httpx.ConnectTimeout)
            raise transport_error(action, self.base_url, e, reached=not unreached) from e
        except (KeyError, ValueError, TypeError) as e:  # an answer not shaped as fal's protocol says
            raise PermanentApiError(f"{action}: the provider's answer does not parse ({e!r})") from e


@contextlib.contextmanager
def _storage_at(base_url: str | None) -> Iterator[None]:
    """`fal_client`'s storage hosts pointed at `base_url` while it uploads (it has no option for them: fal's own
    tests set the same module attributes); fal's own hosts when None."""
    if base_url is None:
        yield
        return
    saved = fal_hosts.REST_URL, fal_hosts.CDN_URL
    fal_hosts.REST_URL = fal_hosts.CDN_URL = base_url
    try:
        yield
    finally:
        fal_hosts.REST_URL, fal_hosts.CDN_URL = saved


def _raise_for(response: httpx.Response) -> None:
    """A queue or CDN answer that is an error, raised as `fal_client` raises it (`detail` as the message)."""
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail", response.text) if isinstance(body, dict) else response.text
    error_type = (body.get("error_type") if isinstance(body, dict) else None) or response.headers.get(
        "x-fal-error-type")
    raise FalClientHTTPError(detail, response.status_code, dict(response.headers), response, error_type)


def _said(detail: Any) -> str:
    """fal's `detail`: a message, or a list of refused inputs (`{loc: [body, field], msg, type}`), each as
    `field: message`."""
    if isinstance(detail, list):
        return "; ".join(_refusal(item) for item in detail)
    return str(detail)[:500]


def _refusal(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    where = ".".join(str(part) for part in item.get("loc", []) if part != "body")
    return f"{where}: {item.get('msg', 'refused')}" if where else str(item.get("msg", "refused"))


def _failed(job_id: str, status: int, detail: Any, error_type: str | None) -> JobState:
    """A request that completed with an error: refused inputs and policy blocks are final, infrastructure
    failures may pass."""
    code = error_type or (detail[0].get("type") if isinstance(detail, list) and detail and isinstance(
        detail[0], dict) else None) or str(status)
    passing = code in _PASSING or status in (500, 502, 503, 504)
    return JobState(id=job_id, status="failed", error_code=code, error_message=_said(detail), transient=passing)


def _found(result: Any, path: str) -> Any:
    for part in path.split("."):
        result = result.get(part) if isinstance(result, dict) else None
    return result


def _error(action: str, status: int, said: str, headers: httpx.Headers, key_variable: str | None) -> ApiError:
    if status == 403:
        return PermanentApiError(f"{action}: 403 {said} (the key has no access, or the account's balance is "
                                 "locked)", status=status)
    return status_error(action, status, said, headers, key_variable)
