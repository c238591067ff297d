"""A small synchronous HTTP client of the tether REST API, used by the CLI.

Every method returns the parsed JSON body. A failure answer (``{"error": {"code",
"message", "field"}}``) becomes :class:`ApiError`; a controller that cannot be reached
becomes :class:`UnreachableError`. :meth:`Client.list_all` follows the ``next`` cursor of a
paginated listing, so callers see every object.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

__all__ = ["DEFAULT_URL", "PAGE_SIZE", "ApiError", "Client", "UnreachableError", "segment"]

DEFAULT_URL = "http://127.0.0.1:7500"
PAGE_SIZE = 1000
"""Objects asked for per page when listing (the API's largest page)."""

Params = Mapping[str, str | int | bool | None]


class ApiError(Exception):
    """A failure answer of the API, or a failure to get one."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.message} (field: {self.field})" if self.field else self.message


class UnreachableError(ApiError):
    """No HTTP answer: the controller is down, the address is wrong, or it timed out."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            0,
            "unreachable",
            f"the controller is not reachable at {url} ({reason}); "
            "is `tether serve` running there? (set --url or TETHER_URL)",
        )


def segment(value: str | int) -> str:
    """``value`` escaped to be one segment of a URL path (``.`` and ``..`` included)."""
    text = quote(str(value), safe="")
    return text.replace(".", "%2E") if text in (".", "..") else text


def _error_from(response: httpx.Response) -> ApiError:
    try:
        error = response.json()["error"]
        return ApiError(
            response.status_code, str(error["code"]), str(error["message"]), error.get("field")
        )
    except (ValueError, KeyError, TypeError):
        text = " ".join(response.text.split())[:200] or response.reason_phrase
        return ApiError(response.status_code, "http_error", f"HTTP {response.status_code}: {text}")


def _clean(params: Params | None) -> dict[str, str | int | bool]:
    return {key: value for key, value in (params or {}).items() if value is not None}


class Client:
    """Calls the API at ``base_url``; use as a context manager or call :meth:`close`."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        timeout: float = 30.0,
        page_size: int | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.page_size = page_size or PAGE_SIZE
        self._http = httpx.Client(timeout=timeout, transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(
        self, method: str, path: str, *, params: Params | None = None, body: Any = None
    ) -> Any:
        """One call; ``path`` starts with ``/`` (``/v1/networks``)."""
        url = self.base_url + path
        try:
            response = self._http.request(method, url, params=_clean(params), json=body)
        except httpx.TimeoutException:
            raise UnreachableError(self.base_url, "no answer in time") from None
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise ApiError(
                0, "bad_url", f"{self.base_url!r} is not a usable controller URL ({exc})"
            ) from None
        except httpx.TransportError as exc:
            raise UnreachableError(self.base_url, str(exc) or type(exc).__name__) from None
        if response.is_error:
            raise _error_from(response)
        try:
            return response.json()
        except ValueError:
            raise ApiError(
                response.status_code, "bad_response", f"{method} {path} did not answer JSON"
            ) from None

    def get(self, path: str, params: Params | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any, params: Params | None = None) -> Any:
        return self.request("POST", path, params=params, body=body)

    def patch(self, path: str, body: Any, params: Params | None = None) -> Any:
        return self.request("PATCH", path, params=params, body=body)

    def delete(self, path: str, params: Params | None = None) -> Any:
        return self.request("DELETE", path, params=params)

    def list_all(self, path: str, params: Params | None = None) -> list[dict[str, Any]]:
        """Every item of a paginated listing, following ``next`` until the last page."""
        items: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            page = self.get(path, {**(params or {}), "limit": self.page_size, "after": after})
            items.extend(page["items"])
            cursor = page.get("next")
            if not cursor:
                return items
            if cursor == after:
                raise ApiError(0, "bad_response", f"GET {path}: the page cursor did not advance")
            after = cursor
