"""arche-predict's Flask LTI 1.3 tool: config, database, services, web and CLI.

`create_app` lives in `lti_app.app`; importing this package stays cheap, so the scheduler and
the CLI can use services without loading the web stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lti_app.app import create_app as create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from lti_app.app import create_app

        return create_app
    raise AttributeError(name)
