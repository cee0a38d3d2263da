"""RFC 9457 problem+json answers for every HTTP error."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi_problem.error import (
    ConflictProblem,
    ForbiddenProblem,
    NotFoundProblem,
    Problem,
    UnauthorisedProblem,
    UnprocessableProblem,
)
from fastapi_problem.handler import ExceptionHandler, add_exception_handler, new_exception_handler
from pydantic import ValidationError
from pymongo.errors import ConnectionFailure

from centricity_plumbing.rules import RuleViolation

PROBLEM_TYPE_URI = "urn:centricity:problem:{type}"

__all__ = [
    "ConflictProblem",
    "ForbiddenProblem",
    "NotFoundProblem",
    "Problem",
    "UnauthorisedProblem",
    "UnprocessableProblem",
    "install_problem_handlers",
    "violation_problem",
]


def validation_problem(errors: Sequence[Any]) -> Problem:
    """422 naming each invalid field, without echoing the (possibly large) input back."""
    return Problem(
        "Request validation error.",
        type_="request-validation-failed",
        status=422,
        errors=[
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in errors
        ],
    )


def _request_validation(_: ExceptionHandler, __: Request, error: RequestValidationError) -> Problem:
    return validation_problem(error.errors())


def _model_validation(_: ExceptionHandler, __: Request, error: ValidationError) -> Problem:
    # A request that passed the HTTP model but not the contract model it becomes.
    return validation_problem(error.errors(include_url=False, include_input=False))


def violation_problem(error: RuleViolation) -> Problem:
    """The problem+json answer of a broken rule: its own type, title and status."""
    return Problem(
        error.title, type_=error.kind, detail=error.detail, status=error.status, **error.extensions()
    )


class DependencyUnavailable(Problem):
    def __init__(self, dependency: str, retry_after_s: int) -> None:
        super().__init__(
            "Service unavailable",
            type_="dependency-unavailable",
            detail=f"The {dependency} does not answer. Retry in {retry_after_s} s; a write retried with "
            "the same Idempotency-Key (or an idea with the same reference) takes effect once.",
            status=503,
            headers={"Retry-After": str(retry_after_s)},
        )


def _unavailable(dependency: str) -> Callable[[ExceptionHandler, Request, Exception], Problem]:
    def answer(_: ExceptionHandler, request: Request, __: Exception) -> Problem:
        return DependencyUnavailable(dependency, request.app.state.settings.unavailable_retry_after_s)

    return answer


def _rule_violation(_: ExceptionHandler, __: Request, error: RuleViolation) -> Problem:
    return violation_problem(error)


OpenAPIDocument = dict[str, Any]
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
UNPROCESSABLE_REF = {"$ref": "#/components/schemas/HTTPValidationError"}


def _error_responses(document: OpenAPIDocument) -> Iterator[tuple[str, dict[str, Any]]]:
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                if status[0] in "45":
                    yield status, response


def _with_problem_bodies(generate: Callable[[], OpenAPIDocument]) -> Callable[[], OpenAPIDocument]:
    """Every documented error carries the problem+json body it is answered with: a route that
    names a status with only a description would otherwise promise a body of any shape."""

    def generate_with_bodies() -> OpenAPIDocument:
        document = generate()
        for status, response in _error_responses(document):
            if "content" not in response:
                schema = UNPROCESSABLE_REF if status == "422" else PROBLEM_REF
                response["content"] = {"application/problem+json": {"schema": schema}}
        return document

    return generate_with_bodies


def _with_rule_violations_in_422(generate: Callable[[], OpenAPIDocument]) -> Callable[[], OpenAPIDocument]:
    """A 422 is either a body the schema refuses (`errors` names each field) or a rule the schema
    cannot state, such as a decline without a reason (`detail` says which): document both."""

    def generate_with_rules() -> OpenAPIDocument:
        document = generate()
        unprocessable = document.get("components", {}).get("schemas", {}).get("HTTPValidationError")
        if unprocessable is not None:
            unprocessable["required"] = ["type", "title", "status"]
            unprocessable["properties"]["detail"] = {"type": "string", "title": "What rule was broken"}
            unprocessable["description"] = (
                "A request the schema refuses names each field in `errors`; a request that breaks a "
                "rule the schema cannot state says which in `detail`."
            )
        return document

    return generate_with_rules


def install_problem_handlers(app: FastAPI, logger: logging.Logger) -> None:
    """Answer validation errors, HTTP errors, raised Problems and crashes as problem+json, and
    document them so in the OpenAPI document."""
    # Inside fastapi_problem's own rewrite of the document, which needs every 422 to have a body.
    app.openapi = _with_problem_bodies(app.openapi)  # type: ignore[method-assign]
    handler = new_exception_handler(
        logger=logger,
        documentation_uri_template=PROBLEM_TYPE_URI,
        request_validation_handler=_request_validation,
        handlers={
            ValidationError: _model_validation,
            RuleViolation: _rule_violation,
            ConnectionFailure: _unavailable("store"),
            KafkaError: _unavailable("broker"),
        },
    )
    add_exception_handler(app, handler)
    for error in (ValidationError, RuleViolation, ConnectionFailure, KafkaError):
        app.add_exception_handler(error, handler)
    app.openapi = _with_rule_violations_in_422(app.openapi)  # type: ignore[method-assign]
