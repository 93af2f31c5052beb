"""The FastAPI application: routers, error mapping, middleware, static files."""

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DBAPIError, OperationalError

from app import errors
from app.api.responses import validation_error_body
from app.api.router import router as api_router
from app.middleware import BodySizeLimit, SecurityHeaders
from app.pages.router import router as pages_router
from app.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent

ERROR_STATUS = {
    errors.InvalidInput: 422,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Forbidden: 403,
    errors.QueueUnavailable: 503,
}


def _status_for(error: errors.TuneloopError) -> int:
    for kind, status in ERROR_STATUS.items():
        if isinstance(error, kind):
            return status
    return 400


async def _domain_error(request: Request, error: errors.TuneloopError) -> JSONResponse:
    body: dict = {"detail": str(error)}
    if isinstance(error, errors.InvalidInput) and error.field:
        body["field"] = error.field
    if isinstance(error, errors.InvalidRows):
        body["errors"] = error.errors
    return JSONResponse(body, status_code=_status_for(error))


async def _request_invalid(request: Request, error: RequestValidationError) -> JSONResponse:
    # API clients get the same error shape everywhere: detail, field, errors.
    if request.url.path.startswith("/api/"):
        return JSONResponse(validation_error_body(list(error.errors())), status_code=422)
    return await request_validation_exception_handler(request, error)


async def _database_unavailable(request: Request, error: DBAPIError) -> JSONResponse:
    if isinstance(error, OperationalError) or error.connection_invalidated:
        return JSONResponse({"detail": "database unavailable, retry shortly"}, status_code=503,
                            headers={"Retry-After": "1"})
    raise error


def create_app() -> FastAPI:
    get_settings()  # refuse to start with bad settings (a default secret in production)
    app = FastAPI(
        title="tuneloop",
        version="1",
        summary="Human feedback in, better checkpoints out.",
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.add_exception_handler(errors.TuneloopError, _domain_error)
    app.add_exception_handler(DBAPIError, _database_unavailable)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_middleware(BodySizeLimit)
    app.add_middleware(SecurityHeaders)
    app.include_router(api_router, prefix="/api/v1")
    app.include_router(pages_router)
    app.mount("/static", StaticFiles(directory=ROOT / "static"), name="static")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict:
        return {"ok": True}

    return app
