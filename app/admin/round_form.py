"""The "launch a round" form: posted strings in, RoundSettings (or a readable error) out."""

from fastapi import Request
from pydantic import ValidationError

from app.errors import InvalidInput
from app.rounds.schemas import RoundSettings

LABELS = {
    "algorithm": "Algorithm",
    "policy_steps": "Policy steps",
    "learning_rate": "Learning rate",
    "kl_coef": "KL coefficient",
    "kl_budget": "KL budget",
    "reward_model_epochs": "Reward-model epochs",
    "lora_r": "LoRA rank",
    "ratings": "Ratings",
    "rater_weights": "Raters",
    "exclude_raters": "Leave out raters",
    "seed": "Seed",
}


async def posted_round_fields(request: Request) -> dict[str, str]:
    """The form's RoundSettings fields, blanks left out so defaults apply.

    Read by hand rather than as a Form model: a validation error must come back
    as a message on the dashboard, not as FastAPI's JSON 422.
    """
    form = await request.form()  # cached by Starlette; the CSRF check read it already
    fields: dict = {}
    for name in RoundSettings.model_fields:
        value = form.get(name)
        if isinstance(value, str) and value.strip():
            fields[name] = value.strip()
    if "exclude_raters" in fields:  # names, comma-separated
        fields["exclude_raters"] = [n.strip() for n in fields["exclude_raters"].split(",") if n.strip()]
    return fields


def parse_round_settings(fields: dict[str, str]) -> RoundSettings:
    try:
        return RoundSettings.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else ""
        raise InvalidInput(f"{LABELS.get(name, name)}: {first['msg']}", field=name) from None


def form_values(fields: dict[str, str] | None = None) -> dict[str, str]:
    """What the form shows: the defaults, overlaid with what was posted."""
    shown = {k: ", ".join(v) if isinstance(v, list) else v for k, v in (fields or {}).items()}
    return {k: "" if v is None else ", ".join(v) if isinstance(v, list) else str(v)
            for k, v in RoundSettings().model_dump().items()} | shown
