"""Routes for this resource are added by the issue that implements it; the router is mounted already."""

from fastapi import APIRouter

router = APIRouter()
