"""The error answer of one API call, shared by both sources: Amazon's code and message, its request id and the fix."""

from __future__ import annotations


class ApiCallError(Exception):
    """One call refused by the API; str() is one line: operation, code, request id, status, message, fix.

    Built only from what the server said and the operation's name, never from a credential."""

    default_fix = ""  # appended when no more specific fix is known
    request_id_name = "RequestId"  # how the API names its request id in its headers or bodies
    api_name = "API"

    def __init__(
        self,
        code: str,
        message: str,
        *,
        request_id: str | None = None,
        http_status: int = 0,
        operation: str = "",
        fix: str | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.request_id = request_id
        self.http_status = http_status
        self.operation = operation
        self.fix = self.default_fix if fix is None else fix
        super().__init__(self._render())

    def _render(self) -> str:
        rid = f" ({self.request_id_name} {self.request_id})" if self.request_id else ""
        status = f" [HTTP {self.http_status}]" if self.http_status else ""
        text = f"{self.operation or self.api_name + ' call'} failed: {self.code}{rid}{status}: {self.message}".rstrip()
        return f"{text} -> {self.fix}" if self.fix else text

    def __reduce__(self):  # keep pickling (multiprocess executors) working with keyword arguments
        return (
            _rebuild,
            (type(self), self.code, self.message, self.request_id, self.http_status, self.operation, self.fix),
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, request_id={self.request_id!r}, "
            f"http_status={self.http_status!r}, operation={self.operation!r})"
        )


def _rebuild(cls, code, message, request_id, http_status, operation, fix):
    return cls(code, message, request_id=request_id, http_status=http_status, operation=operation, fix=fix)
