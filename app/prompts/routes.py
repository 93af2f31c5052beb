from fastapi import APIRouter, status

from app.api.responses import errors
from app.deps import CurrentAdmin, SessionDep
from app.prompts.schemas import PromptIds, PromptsIn
from app.prompts.service import add_checked_prompts

router = APIRouter(prefix="/prompts", tags=["prompts"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PromptIds,
             responses=errors(403))
def create_prompts(body: PromptsIn, db: SessionDep, admin: CurrentAdmin) -> PromptIds:
    """Add prompts for generation, all or none (admins only)."""
    ids = add_checked_prompts(db, [p.model_dump(exclude_none=True) for p in body.prompts], default_source="api")
    return PromptIds(ids=ids)
