"""The FastAPI application: routers, error mapping, middleware, static files."""

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import errors
from app.api.responses import ErrorBody, status_for, validation_error_body
from app.api.router import router as api_router
from app.deps import CurrentAdmin, SessionDep
from app.middleware import BodySizeLimit, DatabaseConcurrency, SecurityHeaders
from app.monitoring import RequestTimer, metrics_page
from app.pages.router import router as pages_router
from app.settings import get_settings

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent

async def _domain_error(request: Request, error: errors.TuneloopError) -> JSONResponse:
    body: dict = {"detail": str(error)}
    if isinstance(error, errors.InvalidInput) and error.field:
        body["field"] = error.field
    if isinstance(error, errors.InvalidRows):
        body["errors"] = error.errors
    return JSONResponse(body, status_code=status_for(error))


async def _request_invalid(request: Request, error: RequestValidationError) -> JSONResponse:
    # API clients get the same error shape everywhere: detail, field, errors.
    if request.url.path.startswith("/api/"):
        return JSONResponse(validation_error_body(list(error.errors())), status_code=422)
    return await request_validation_exception_handler(request, error)


async def _http_error(request: Request, error: StarletteHTTPException):
    # FastAPI answers 400 for a body that json.loads refused outright (not UTF-8,
    # an integer of thousands of digits); to an API client that is invalid input
    # like any other malformed JSON, so it gets the same 422 and body shape.
    if (error.status_code == 400 and isinstance(error.__cause__, ValueError)
            and request.url.path.startswith("/api/")):
        return JSONResponse({"detail": "body: not valid JSON text", "field": "body",
                             "errors": [{"field": "body", "message": "not valid JSON text",
                                         "index": None, "reason": "invalid"}]}, status_code=422)
    return await http_exception_handler(request, error)


async def _database_unavailable(request: Request, error: DBAPIError) -> JSONResponse:
    if isinstance(error, OperationalError) or error.connection_invalidated:
        # The driver's error class and SQLSTATE only: the message can quote request data.
        logger.warning("%s %s answered 503: %s (SQLSTATE %s)", request.method, request.url.path,
                       type(error.orig).__name__, getattr(error.orig, "sqlstate", None))
        return JSONResponse({"detail": "database unavailable, retry shortly"}, status_code=503,
                            headers={"Retry-After": "1"})
    if isinstance(error, DataError):
        # A value the database cannot hold (an id beyond its integers, say): the
        # request's fault, not the server's. Routes should refuse such input first.
        return JSONResponse({"detail": "a value in the request is out of range for storage"},
                            status_code=422)
    raise error


async def _pool_exhausted(request: Request, error: PoolTimeout) -> JSONResponse:
    # Every pooled connection stayed busy for the whole pool timeout: overloaded, not broken.
    return JSONResponse({"detail": "database busy, retry shortly"}, status_code=503,
                        headers={"Retry-After": "1"})


def _describe_api(app: FastAPI) -> None:
    """OpenAPI as clients meet it: bearer tokens on every route (deps reads the header
    itself, so FastAPI cannot see that), and the 422 body _request_invalid really sends."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = generate()
            components = schema.setdefault("components", {})
            schemas = components.setdefault("schemas", {})
            body = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(body.pop("$defs", {}))
            schemas["HTTPValidationError"] = body
            schemas.pop("ValidationError", None)
            components["securitySchemes"] = {"bearerToken": {
                "type": "http", "scheme": "bearer",
                "description": "A token from `tuneloop token create USER`."}}
            schema["security"] = [{"bearerToken": []}]
        return app.openapi_schema

    app.openapi = openapi


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
    app.add_exception_handler(PoolTimeout, _pool_exhausted)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(DatabaseConcurrency)
    app.add_middleware(BodySizeLimit)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestTimer)
    app.include_router(api_router, prefix="/api/v1")
    app.include_router(pages_router)
    _describe_api(app)
    app.mount("/static", StaticFiles(directory=ROOT / "static"), name="static")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict:
        return {"ok": True}

    @app.get("/metrics", include_in_schema=False)
    def metrics(db: SessionDep, _: CurrentAdmin) -> Response:
        """Prometheus metrics (scrape with an admin's API token as the bearer token)."""
        body, content_type = metrics_page(db)
        return Response(body, media_type=content_type)

    return app
