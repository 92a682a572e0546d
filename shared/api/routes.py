"""The API's routes: HTTP in, ExportOperations, documents out. Authentication, project grants and
media types are checked before a route runs (shared.api.routing)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response, Security
from fastapi.security import HTTPBearer

from shared.api.auth import Caller
from shared.api.convert import export_out
from shared.api.errors import ERROR_MEDIA_TYPE
from shared.api.etags import Preconditions
from shared.api.models import (
    ErrorResponse,
    ExportDefinition,
    ExportList,
    ExportOut,
    ExportPatch,
    OnboardingIn,
    OnboardingOut,
    ResumeOut,
)
from shared.api.operations import ExportOperations
from shared.api.routing import GuardedRoute
from shared.api.rules import ID_PATTERN, ID_RULE
from shared.exports import ExportRecord

bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    scheme_name="EntraId",
    description="A Microsoft Entra ID access token for the API; project grants come from its app roles "
    "(Exports.Read.<projectId>, Exports.Write.<projectId>, Exports.Owner.<projectId>, Exports.Admin).",
)


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description, "content": {ERROR_MEDIA_TYPE: {}}}


router = APIRouter(
    prefix="/api",
    route_class=GuardedRoute,
    dependencies=[Security(bearer)],
    responses={
        400: _error("The request is not valid: `error.code` and `error.target` say what and where."),
        401: _error("No valid access token (see the WWW-Authenticate header)."),
        403: _error("The caller may read the project but not change it."),
        404: _error("No such export, or a project the caller has no role for."),
        503: _error("Access tokens cannot be checked right now."),
    },
)


def current_caller(request: Request) -> Caller:
    caller: Caller = request.state.caller
    return caller


def operations(request: Request, caller: Annotated[Caller, Depends(current_caller)]) -> ExportOperations:
    return ExportOperations(request.app.state.services(), actor=caller.subject)


ProjectId = Annotated[
    str, Path(alias="projectId", pattern=ID_PATTERN, description=f"The project: {ID_RULE}.")
]
ExportId = Annotated[
    str,
    Path(alias="exportId", pattern=ID_PATTERN, description=f"The export, chosen by the customer: {ID_RULE}."),
]
CallerDep = Annotated[Caller, Depends(current_caller)]
Operations = Annotated[ExportOperations, Depends(operations)]
IfMatch = Annotated[
    str | None, Header(description="Change only if the export is still at this ETag (else 412).")
]
CheckDestination = Annotated[
    bool,
    Query(
        alias="checkDestination",
        description="false: skip the destination check (for exports created ahead of their storage). Not "
        "with Microsoft Entra ID (400 CheckRequired): the check reads the destination's claim for the "
        "project.",
    ),
]
Responses = dict[int | str, dict[str, Any]]
_PRECONDITION: Responses = {412: _error("If-Match or If-None-Match failed: the export changed, or exists.")}
_CONFLICT: Responses = {409: _error("The export was changed concurrently, or cannot do this in its state.")}
_MEDIA: Responses = {415: _error("The body's media type is not accepted.")}
EXPORT = "/projects/{projectId}/exports/{exportId}"


def _answer(response: Response, record: ExportRecord) -> ExportOut:
    out = export_out(record)
    response.headers["ETag"] = out.etag
    return out


@router.get(
    "/exports",
    response_model=ExportList,
    response_model_exclude_none=True,
    summary="List the exports of every project the caller sees",
)
def list_all_exports(caller: CallerDep, ops: Operations) -> ExportList:
    return ExportList(value=[export_out(r) for r in ops.list(caller.projects())])


@router.get(
    "/projects/{projectId}/exports",
    response_model=ExportList,
    response_model_exclude_none=True,
    summary="List a project's exports",
)
def list_exports(project_id: ProjectId, ops: Operations) -> ExportList:
    return ExportList(value=[export_out(r) for r in ops.list(frozenset({project_id}))])


@router.get(EXPORT, response_model=ExportOut, response_model_exclude_none=True, summary="Read an export")
def get_export(project_id: ProjectId, export_id: ExportId, response: Response, ops: Operations) -> ExportOut:
    return _answer(response, ops.get(project_id, export_id))


@router.put(
    EXPORT,
    response_model=ExportOut,
    response_model_exclude_none=True,
    summary="Create (201) or replace (200) an export",
    responses={201: {"model": ExportOut, "description": "Created."}, **_PRECONDITION, **_CONFLICT, **_MEDIA},
)
def put_export(
    project_id: ProjectId,
    export_id: ExportId,
    definition: Annotated[ExportDefinition, Body()],
    response: Response,
    ops: Operations,
    if_match: IfMatch = None,
    if_none_match: Annotated[str | None, Header(description="`*`: create only (412 if it exists).")] = None,
    check_destination: CheckDestination = True,
) -> ExportOut:
    pre = Preconditions.parse(if_match, if_none_match)
    record, created = ops.put(project_id, export_id, definition, pre, check=check_destination)
    if created:
        response.status_code = 201
        response.headers["Location"] = f"/api/projects/{project_id}/exports/{export_id}"
    return _answer(response, record)


@router.patch(
    EXPORT,
    response_model=ExportOut,
    response_model_exclude_none=True,
    summary="Change an export with a JSON merge patch (RFC 7396)",
    responses={**_PRECONDITION, **_CONFLICT, **_MEDIA},
)
def patch_export(
    project_id: ProjectId,
    export_id: ExportId,
    patch: Annotated[ExportPatch, Body(media_type="application/merge-patch+json")],
    response: Response,
    ops: Operations,
    if_match: IfMatch = None,
    check_destination: CheckDestination = True,
) -> ExportOut:
    changes = patch.model_dump(mode="json", exclude_unset=True)
    pre = Preconditions.parse(if_match)
    return _answer(response, ops.patch(project_id, export_id, changes, pre, check=check_destination))


@router.delete(
    EXPORT,
    status_code=204,
    response_class=Response,
    summary="Delete an export: it stops; data already exported stays where it is",
    responses=_PRECONDITION,
)
def delete_export(
    project_id: ProjectId, export_id: ExportId, ops: Operations, if_match: IfMatch = None
) -> Response:
    ops.delete(project_id, export_id, Preconditions.parse(if_match))
    return Response(status_code=204)


@router.post(
    EXPORT + "/disable",
    response_model=ExportOut,
    response_model_exclude_none=True,
    summary="Disable an export: it neither writes nor keeps signals",
    responses={**_PRECONDITION, **_CONFLICT},
)
def disable_export(
    project_id: ProjectId, export_id: ExportId, response: Response, ops: Operations, if_match: IfMatch = None
) -> ExportOut:
    return _answer(response, ops.set_enabled(project_id, export_id, False, Preconditions.parse(if_match)))


@router.post(
    EXPORT + "/enable",
    response_model=ExportOut,
    response_model_exclude_none=True,
    summary="Enable an export: signals from now on are exported",
    responses={**_PRECONDITION, **_CONFLICT},
)
def enable_export(
    project_id: ProjectId, export_id: ExportId, response: Response, ops: Operations, if_match: IfMatch = None
) -> ExportOut:
    return _answer(response, ops.set_enabled(project_id, export_id, True, Preconditions.parse(if_match)))


@router.post(
    EXPORT + "/resume",
    response_model=ResumeOut,
    response_model_exclude_none=True,
    status_code=202,
    summary="Resume a postponed export: check the destination, then replay its backlog",
    responses={**_PRECONDITION, **_CONFLICT},
)
def resume_export(
    project_id: ProjectId, export_id: ExportId, response: Response, ops: Operations, if_match: IfMatch = None
) -> ResumeOut:
    record, work_items = ops.resume(project_id, export_id, Preconditions.parse(if_match))
    return ResumeOut(export=_answer(response, record), workItems=work_items)


@router.get(EXPORT + "/health", response_model=dict[str, Any], summary="An export's health")
def export_health(project_id: ProjectId, export_id: ExportId, ops: Operations) -> dict[str, Any]:
    return ops.health(project_id, export_id)


@router.post(
    "/projects/{projectId}/onboarding",
    response_model=OnboardingOut,
    response_model_exclude_none=True,
    summary="What a customer's tenant grants the service before an export uses Microsoft Entra ID",
    description="For a destination with `entra` (the tenant's id): the client id of who signs in to the "
    "tenant, the admin consent link, and the exact role assignment to make on the filesystem or "
    "container (an `az` command and a Bicep file). Nothing is stored or checked.",
)
def onboarding(
    project_id: ProjectId, spec: Annotated[OnboardingIn, Body()], ops: Operations
) -> OnboardingOut:
    return ops.onboarding(project_id, spec)
