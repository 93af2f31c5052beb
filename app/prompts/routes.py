from fastapi import APIRouter, status

from app.api.responses import errors
from app.api.types import Text
from app.deps import CurrentAdmin, SessionDep
from app.prompts.schemas import PromptIds, PromptsIn, SourceOut, SourceSettingsIn
from app.prompts.service import add_checked_prompts
from app.prompts.sources import SourceSettings, SourceView, configure_source, list_sources

router = APIRouter(prefix="/prompts", tags=["prompts"])
sources_router = APIRouter(prefix="/prompt-sources", tags=["prompts"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PromptIds,
             responses=errors(403))
def create_prompts(body: PromptsIn, db: SessionDep, admin: CurrentAdmin) -> PromptIds:
    """Add prompts for generation, all or none (admins only)."""
    ids = add_checked_prompts(db, [p.model_dump(exclude_none=True) for p in body.prompts], default_source="api")
    return PromptIds(ids=ids)


def _source_out(view: SourceView) -> SourceOut:
    s = view.settings
    return SourceOut(name=view.name, prompts=view.prompts, active_prompts=view.active_prompts,
                     selection=s.selection, random_share=s.random_share, candidates=s.candidates,
                     responses=s.responses)


@sources_router.get("", response_model=list[SourceOut], responses=errors(403))
def get_sources(db: SessionDep, _: CurrentAdmin) -> list[SourceOut]:
    """Every prompt source with its prompt counts and how the pool draws its pairs (admins only)."""
    return [_source_out(view) for view in list_sources(db)]


@sources_router.put("/{name}", response_model=SourceOut, responses=errors(403, 422))
def put_source(name: Text, body: SourceSettingsIn, db: SessionDep, _: CurrentAdmin) -> SourceOut:
    """Set how the pool draws training pairs for one source (admins only)."""
    configure_source(db, name, SourceSettings(body.selection, body.random_share, body.candidates, body.responses))
    return next(_source_out(view) for view in list_sources(db) if view.name == name)
