"""The simulator's SP-API face: LWA tokens, Orders v2026-01-01 and Reports 2021-06-30 over the same order timeline."""

from .routes import SpApiService, is_sp_api_path

__all__ = ["SpApiService", "is_sp_api_path"]
