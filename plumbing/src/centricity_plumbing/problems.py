"""RFC 9457 problem+json answers for every HTTP error."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi_problem.error import (
    ConflictProblem,
    ForbiddenProblem,
    NotFoundProblem,
    Problem,
    UnauthorisedProblem,
    UnprocessableProblem,
)
from fastapi_problem.handler import add_exception_handler, new_exception_handler

PROBLEM_TYPE_URI = "urn:centricity:problem:{type}"

__all__ = [
    "ConflictProblem",
    "ForbiddenProblem",
    "NotFoundProblem",
    "Problem",
    "UnauthorisedProblem",
    "UnprocessableProblem",
    "install_problem_handlers",
]


def install_problem_handlers(app: FastAPI, logger: logging.Logger) -> None:
    """Answer validation errors, HTTP errors, raised Problems and crashes as problem+json."""
    handler = new_exception_handler(logger=logger, documentation_uri_template=PROBLEM_TYPE_URI)
    add_exception_handler(app, handler)
