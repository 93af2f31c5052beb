"""/api/v1: every REST route, gathered from the domain packages."""

from fastapi import APIRouter

router = APIRouter()
