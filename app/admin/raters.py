"""/admin/raters: who rates how much, how fast, and how consistently with others; onboarding
a team from a CSV (the same rules as `tuneloop user import`)."""

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from app.admin.rater_stats import rater_stats
from app.admin.rendering import render
from app.api.responses import status_for
from app.auth.page_guard import CsrfChecked, PageAdmin, PageRoute, Viewer
from app.deps import SessionDep
from app.errors import InvalidInput
from app.feedback.reliability import MIN_RATER_ITEMS, MIN_SHARED_ITEMS
from app.users.onboarding import import_users, parse_users

router = APIRouter(route_class=PageRoute)
MAX_CSV_BYTES = 1_000_000


def _raters_page(request: Request, db: SessionDep, viewer: Viewer, *, status_code: int = 200,
                 **context) -> Response:
    return render(request, "raters.html", viewer, "raters", status_code=status_code,
                  stats=rater_stats(db), min_shared=MIN_SHARED_ITEMS, min_rater=MIN_RATER_ITEMS, **context)


@router.get("/admin/raters")
def raters_page(request: Request, db: SessionDep, viewer: PageAdmin) -> Response:
    """Rater statistics, and the form to add raters from a CSV."""
    return _raters_page(request, db, viewer)


@router.post("/admin/raters/import", dependencies=[CsrfChecked])
async def import_raters(request: Request, db: SessionDep, viewer: PageAdmin) -> Response:
    """Create accounts from a pasted or uploaded CSV, all or none; their tokens are shown once."""
    form = await request.form()
    upload, pasted = form.get("file"), form.get("csv")
    text = ""
    try:
        if isinstance(upload, UploadFile) and upload.filename:
            raw = await upload.read(MAX_CSV_BYTES + 1)
            if len(raw) > MAX_CSV_BYTES:
                raise InvalidInput(f"{upload.filename}: over {MAX_CSV_BYTES // 1000} kB")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(f"{upload.filename}: not valid UTF-8") from None
            origin = upload.filename
        else:
            text, origin = (pasted if isinstance(pasted, str) else ""), "the pasted CSV"
        created = import_users(db, parse_users(text, origin), origin)
    except InvalidInput as error:
        return _raters_page(request, db, viewer, status_code=status_for(error), import_error=str(error),
                            pasted=text)
    response = _raters_page(request, db, viewer, created=created)
    response.headers["Cache-Control"] = "no-store"  # the tokens are on this page, once
    return response
