"""Exception types and handlers: every failure answers JSON with a 4xx/5xx status, never a bare 500 page."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

logger = logging.getLogger(__name__)


class NotFound(Exception):
    """A missing row, or one owned by somebody else: both look the same to the caller (spec §2)."""


class BadRequest(Exception):
    def __init__(self, detail: str, status_code: int = 400) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status_code = status_code


def _not_found(_: Request, __: Exception) -> JSONResponse:
    # `detail` like every other error, plus upstream's `error` key that older clients look for.
    return JSONResponse({"detail": "Not found", "error": "Not found"}, status_code=404)


def _bad_request(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BadRequest)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)


def _integrity(_: Request, exc: Exception) -> JSONResponse:
    # Unique/foreign-key races that slipped past the explicit checks: a conflict, not a server fault.
    logger.info("Integrity error answered with 409: %s", str(exc).splitlines()[0])
    return JSONResponse({"detail": "Conflict with existing data; retry the request"}, status_code=409)


def _data_error(_: Request, exc: Exception) -> JSONResponse:
    logger.info("Data error answered with 400: %s", str(exc).splitlines()[0])
    return JSONResponse({"detail": "A value could not be stored (out of range or malformed)"}, status_code=400)


def _db_unavailable(_: Request, exc: Exception) -> JSONResponse:
    logger.error("Database unavailable: %s", str(exc).splitlines()[0])
    return JSONResponse({"detail": "Database unavailable"}, status_code=503)


def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    logger.exception("Unhandled error", exc_info=exc)
    return JSONResponse({"detail": "Internal server error"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(BadRequest, _bad_request)
    app.add_exception_handler(IntegrityError, _integrity)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(OperationalError, _db_unavailable)
    app.add_exception_handler(Exception, _unexpected)
