"""Server-side listings behind opaque NextTokens (base64 with +, / and =), replayable after a failure."""

from __future__ import annotations

import base64
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Sequence

_MAX_TOKENS = 200_000


@dataclass
class Listing:
    """A result cut into pages; `entries` is any sliceable, `context` what every page repeats."""

    family: str
    entries: Sequence[Any]
    page_size: int
    context: dict[str, Any]
    tokens: dict[int, str] = field(default_factory=dict)

    def page(self, number: int) -> Sequence[Any]:
        """Entries of page `number` (0-based)."""
        return self.entries[number * self.page_size : (number + 1) * self.page_size]

    def has_page(self, number: int) -> bool:
        """Whether page `number` has any entry."""
        return number * self.page_size < len(self.entries)


def new_token() -> str:
    """An opaque token that always contains '+', '/' and '=' (so clients must percent-encode it)."""
    return base64.b64encode(b"\xfb\xff" + secrets.token_bytes(30)).decode()


class TokenStore:
    """Maps tokens to (listing, page); the same page always gets the same token."""

    def __init__(self) -> None:
        self._pages: OrderedDict[str, tuple[Listing, int]] = OrderedDict()
        self._lock = threading.Lock()

    def token_for(self, listing: Listing, page: int) -> str | None:
        """The NextToken leading to `page`, or None when the listing has no such page."""
        if not listing.has_page(page):
            return None
        with self._lock:
            token = listing.tokens.get(page)
            if token is None:
                token = new_token()
                listing.tokens[page] = token
                self._pages[token] = (listing, page)
                while len(self._pages) > _MAX_TOKENS:
                    self._pages.popitem(last=False)
            return token

    def resolve(self, token: str, family: str) -> tuple[Listing, int] | None:
        """The listing and page a token stands for, if it exists and belongs to `family`."""
        with self._lock:
            found = self._pages.get(token)
        if found is None or found[0].family != family:
            return None
        return found
