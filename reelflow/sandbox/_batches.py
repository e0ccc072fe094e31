"""The Batch API for `/v1/videos`: a JSONL file of creates (JSON bodies; reference images as data URLs or
file ids), run as one batch whose output file maps each `custom_id` to its video.

The lines are validated and their jobs started when the batch is created; the batch itself reports
validating, in_progress, then completed (with its output and error files) over the sandbox's clock."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ._problems import ApiProblem, check_known, invalid_value, read_fields, required_text
from ._state import Job, new_id, now

if TYPE_CHECKING:
    from ._app import Sandbox

ENDPOINT = "/v1/videos"
Create = Callable[[dict[str, Any]], Awaitable[Job]]


class Batches:
    """The `/v1/batches` routes of one sandbox."""

    def __init__(self, engine: Sandbox, create: Create, as_submitted: Callable[[Job], dict[str, Any]],
                 seconds: float) -> None:
        self.engine = engine
        self.state = engine.state
        self.create_job = create
        self.as_submitted = as_submitted
        self.seconds = seconds  # how long a batch takes to complete

    async def create(self, request: Request) -> Response:
        fields = await read_fields(request)
        check_known(fields, ("input_file_id", "endpoint", "completion_window", "metadata"))
        file_id = required_text(fields, "input_file_id", 256)
        if fields.get("endpoint") != ENDPOINT:
            raise invalid_value("endpoint", fields.get("endpoint"), (ENDPOINT,))
        if fields.get("completion_window") != "24h":
            raise invalid_value("completion_window", fields.get("completion_window"), ("24h",))
        if file_id not in self.state.files:
            raise ApiProblem(400, f"No such File object: {file_id}", param="input_file_id")
        record = await self._run(file_id, fields.get("metadata"))
        self.engine.batches_created += 1
        return JSONResponse(self._resource(record))

    async def retrieve(self, request: Request) -> Response:
        return JSONResponse(self._resource(self._batch(request.path_params["id"])))

    async def cancel(self, request: Request) -> Response:
        record = self._batch(request.path_params["id"])
        if self._status(record) in ("validating", "in_progress"):
            record = {**record, "cancelled_at": int(now())}
            self.state.save_record("batches", record)
        return JSONResponse(self._resource(record))

    async def list_batches(self, request: Request) -> Response:
        records = sorted(self.state.batches.values(), key=lambda r: r["created_at"], reverse=True)
        limit = int(request.query_params.get("limit", "20"))
        if "after" in request.query_params:
            ids = [r["id"] for r in records]
            after = request.query_params["after"]
            records = records[ids.index(after) + 1:] if after in ids else []
        page = [self._resource(r) for r in records[:limit]]
        return JSONResponse({"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                             "last_id": page[-1]["id"] if page else None, "has_more": len(records) > limit})

    def _batch(self, batch_id: str) -> dict[str, Any]:
        record = self.state.batches.get(batch_id)
        if record is None:
            raise ApiProblem(404, f"No batch found with id '{batch_id}'.", param="batch_id", code="not_found")
        return record

    async def _run(self, file_id: str, metadata: Any) -> dict[str, Any]:
        """Validate every line and start its job; write the output and error files."""
        lines = self.state.get(f"files/{file_id}.bin").decode("utf-8", errors="replace").splitlines()
        outputs: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        failure = _duplicates(lines)
        if failure is None:
            for line in filter(str.strip, lines):
                answer = await self._answer(line)
                (errors if answer["response"]["status_code"] != 200 else outputs).append(answer)
        record = {"id": new_id("batch_"), "input_file_id": file_id, "created_at": now(), "metadata": metadata,
                  "failure": failure, "total": len(outputs) + len(errors), "failed": len(errors),
                  "output_file_id": self._file(outputs, "output") if outputs else None,
                  "error_file_id": self._file(errors, "errors") if errors else None, "cancelled_at": None}
        self.state.save_record("batches", record)
        return record

    async def _answer(self, line: str) -> dict[str, Any]:
        custom_id = None
        try:
            request = json.loads(line)
            custom_id = request.get("custom_id")
            if request.get("method") != "POST" or request.get("url") != ENDPOINT:
                raise ApiProblem(400, f"Each line must be a POST to {ENDPOINT}.", param="url")
            job = await self.create_job(dict(request.get("body") or {}))
            status, body = 200, self.as_submitted(job)
        except ApiProblem as problem:
            status, body = problem.status, problem.body
        except (ValueError, AttributeError):
            status, body = 400, {"error": {"message": "The line is not a JSON object.", "type": "invalid_request_error",
                                           "param": None, "code": "invalid_json"}}
        return {"id": new_id("batch_req_"), "custom_id": custom_id, "error": None,
                "response": {"status_code": status, "request_id": new_id("req_"), "body": body}}

    def _file(self, answers: list[dict[str, Any]], kind: str) -> str:
        data = "".join(json.dumps(answer) + "\n" for answer in answers).encode()
        record = {"id": new_id("file-"), "object": "file", "bytes": len(data), "created_at": int(now()),
                  "filename": f"batch_{kind}.jsonl", "purpose": "batch_output", "status": "processed",
                  "expires_at": None, "status_details": None}
        self.state.put(f"files/{record['id']}.bin", data)
        self.state.save_record("files", record)
        return str(record["id"])

    def _status(self, record: dict[str, Any]) -> str:
        if record["failure"]:
            return "failed"
        if record["cancelled_at"]:
            return "cancelled"
        elapsed = now() - record["created_at"]
        if elapsed < self.seconds * 0.2:
            return "validating"
        return "in_progress" if elapsed < self.seconds else "completed"

    def _resource(self, record: dict[str, Any]) -> dict[str, Any]:
        status = self._status(record)
        created = int(record["created_at"])
        done = status in ("completed", "failed", "cancelled")
        finished = int(record["created_at"] + self.seconds)
        return {
            "id": record["id"], "object": "batch", "endpoint": ENDPOINT, "input_file_id": record["input_file_id"],
            "completion_window": "24h", "status": status, "created_at": created,
            "errors": {"object": "list", "data": [record["failure"]]} if record["failure"] else None,
            "output_file_id": record["output_file_id"] if done else None,
            "error_file_id": record["error_file_id"] if done else None,
            "in_progress_at": created if status != "validating" else None,
            "finalizing_at": finished if status == "completed" else None,
            "completed_at": finished if status == "completed" else None,
            "failed_at": created if status == "failed" else None,
            "cancelling_at": record["cancelled_at"], "cancelled_at": record["cancelled_at"],
            "expires_at": created + 24 * 3600, "expired_at": None, "metadata": record["metadata"],
            "request_counts": {"total": record["total"], "completed": record["total"] - record["failed"],
                               "failed": record["failed"]},
        }


def _duplicates(lines: list[str]) -> dict[str, Any] | None:
    """The real service refuses a whole batch whose custom_ids repeat."""
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        try:
            custom_id = json.loads(line).get("custom_id") if line.strip() else None
        except (ValueError, AttributeError):
            continue
        if custom_id in seen:
            return {"code": "duplicate_custom_id", "line": number, "param": "custom_id",
                    "message": f"The custom_id '{custom_id}' is duplicated in the input file."}
        if custom_id is not None:
            seen.add(custom_id)
    return None
