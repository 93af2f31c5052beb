"""Server-rendered pages for raters and admins."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
