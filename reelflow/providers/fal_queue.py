"""The `fal-queue` dialect: fal.ai's queue (`queue.fal.run`), where every model has inputs of its own.

A create is `POST {base}/{endpoint id}` with the model's own inputs, as the model's map in the profile writes
them (`reelflow.profiles.Endpoint`); it answers a `request_id`. The request is then `IN_QUEUE` (with its
`queue_position`), `IN_PROGRESS`, `COMPLETED`; a failed one completes too, and its result answers the error
(a 422 listing each refused input, a 5xx for an infrastructure failure). The request's URLs are `fal-client`'s
(its request handle's, as `get_handle` makes them from the app and the request id), the result's the
`response_url` the status answer gives; every call goes out over this module's own client, once (a refused
connection is tried again: nothing was sent), because `fal_client` retries a create whose answer timed out or
broke (client.py `_should_retry`), and a retried create may be paid twice. Results are downloaded from their CDN
URL without the key. Images go
as URLs: presigned ones when the output can sign them, else uploaded with `fal_client`'s `upload` to fal's
storage (the sandbox's, when the queue is not fal's own). Sources: docs.fal.ai/model-endpoints/queue,
fal.ai/docs/documentation/model-apis/errors and request-errors, and the `fal-client` 1.0.3 source."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar
from urllib.parse import urlsplit

import fal_client
import fal_client.client as fal_hosts
import httpx
from fal_client.client import AppId, AsyncRequestHandle, FalClientHTTPError

from ..errors import (
    ApiError,
    DeliveryError,
    PermanentApiError,
    ProviderUnusableError,
    RateLimitedError,
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
    id_shaped,
)
from ._http import status_error, streamed, transport_error

_REQUESTS = "/requests/"
_REQUEST_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z-]{7,63}")
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
        self.queue = httpx.AsyncClient(headers={"Authorization": f"Key {key}"}, timeout=config.timeout_seconds,
                                       transport=httpx.AsyncHTTPTransport(retries=config.retries))  # connects only
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
        """The request's status (`IN_QUEUE` with its place, `IN_PROGRESS`, `COMPLETED` with `error` and `error_type`
        when it failed: fal_client 1.0.3 `_BaseRequestHandle._parse_status`); once completed, its result, from the
        `response_url` the status answer gives (fal's docs: "Do not build these URLs yourself",
        fal.ai/docs/api-reference/inference-api). A finished request whose result cannot be fetched (a 5xx, a
        404, a broken connection) is no failure of the request: it is asked for again, never made again."""
        action = f"check {job_id}"
        async with self._translated(action):
            answer = await self.queue.get(self._handle(job_id).status_url, params={"logs": 0})
            _raise_for(answer)
            status = answer.json()
        if status["status"] == "IN_QUEUE":
            return JobState(id=job_id, status="queued", queue_position=status.get("queue_position"))
        if status["status"] != "COMPLETED":
            return JobState(id=job_id, status="running")
        try:
            async with self._translated(f"fetch the result of {job_id}"):
                result = await self.queue.get(self._result_url(job_id, status.get("response_url")))
                if status.get("error") is None:
                    _raise_for(result)
        except (ProviderUnusableError, RateLimitedError):
            raise
        except ApiError as e:
            raise DeliveryError(f"{e} (the request is finished: its result is asked for again, never made again)",
                                status=e.status) from e
        if status.get("error") is not None:  # the result answers the model's own error (fal's docs: queue/result)
            detail = _detail(result) if result.status_code >= 400 else None
            return _failed(job_id, result.status_code, detail or status["error"], status.get("error_type"))
        return self._finished(job_id, result.json())

    def _finished(self, job_id: str, result: Any) -> JobState:
        where = self._endpoint(job_id).video
        video = _found(result, where)
        if not isinstance(video, str):
            return JobState(id=job_id, status="failed", error_code="no_video",
                            error_message=f"the result has no video at {where}")
        return JobState(id=job_id, status="completed", progress=100, outputs=(video,))

    def _result_url(self, job_id: str, given: Any) -> str:
        """Where the request's result is: the `response_url` fal gave, on the queue's own origin (the key goes
        with it), else the one fal_client's `get_handle` makes from the app (client.py, `from_request_id`)."""
        if isinstance(given, str) and _origin(given) == _origin(self.base_url):
            return given
        return self._handle(job_id).response_url

    @contextlib.asynccontextmanager
    async def download(self, job: JobState, variant: Variant) -> AsyncIterator[Body]:
        """From the result's CDN URL, which needs no key (and is never sent one)."""
        action = f"download the {variant} of {job.id}"
        if not job.outputs:
            raise PermanentApiError(f"{action}: the result named no video")
        async with self._translated(action):
            response = await self.cdn.send(self.cdn.build_request("GET", job.outputs[0]), stream=True)
            try:
                if response.status_code >= 400:
                    await response.aread()
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

    @classmethod
    def adopted_id(cls, given: str, request: WireRequest) -> str:
        """A request id as fal shows it (a UUID: `"request_id": "80e732af-660e-45cd-bd63-580e4f2a94cc"`,
        docs.fal.ai/model-endpoints/queue), alone or after its endpoint or app and `/requests/`; kept with the
        endpoint `request` goes to, whose map says where its result has the video."""
        endpoint = request.route.removeprefix("POST /")
        where, _, request_id = given.strip().rpartition(_REQUESTS)
        app = AppId.from_endpoint_id(endpoint)
        if where not in ("", endpoint, f"{app.owner}/{app.alias}"):
            raise ValueError(f"{given[:80]!r} is a request of {where}, not of {endpoint}")
        return f"{endpoint}{_REQUESTS}{id_shaped(request_id, _REQUEST_ID, 'a UUID, as fal shows a request id')}"

    async def close(self) -> None:
        await self.queue.aclose()
        await self.cdn.aclose()

    def _handle(self, job_id: str) -> AsyncRequestHandle:
        """The request's handle in `fal_client`, its URLs on this queue (`{owner}/{alias}/requests/{id}`: the
        endpoint's app, without the endpoint's path, as fal routes status and results)."""
        endpoint_id, _, request_id = job_id.rpartition(_REQUESTS)
        try:
            app = AppId.from_endpoint_id(endpoint_id)
        except (ValueError, IndexError) as e:  # fal_client's "Invalid app id" (client.py `_ensure_app_id_format`)
            raise PermanentApiError(f"{job_id} is no request of fal's queue (<endpoint>/requests/<id>): {e}") from e
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
    body = _body(response)
    error_type = (body.get("error_type") if isinstance(body, dict) else None) or response.headers.get(
        "x-fal-error-type")
    raise FalClientHTTPError(_detail(response), response.status_code, dict(response.headers), response, error_type)


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _detail(response: httpx.Response) -> Any:
    """An error answer's `detail` (a message, or fal's list of refused inputs), else its text."""
    body = _body(response)
    return body.get("detail", response.text) if isinstance(body, dict) else response.text


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


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
