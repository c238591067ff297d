"""What every resource command shares: ``--url`` and ``--json``, and a client of the API
whose failures end the command with one line."""

# No `from __future__ import annotations`: typer reads these annotations at runtime.

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from tether.cli.client import ApiError, Client
from tether.cli.output import fail

__all__ = ["JsonOpt", "UrlOpt", "api"]

UrlOpt = Annotated[
    str, typer.Option("--url", envvar="TETHER_URL", help="Base URL of the tether REST API.")
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the API's JSON answer instead of a table.")
]


@contextmanager
def api(url: str) -> Iterator[Client]:
    """A client of ``url``; an API failure inside the block ends the command with one line."""
    with Client(url) as client:
        try:
            yield client
        except ApiError as exc:
            fail(str(exc))
