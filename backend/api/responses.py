"""JSON responses rendered with orjson, for bodies built by hand (errors, readiness).

Endpoints with a response model are serialised by FastAPI through pydantic directly.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class OrjsonResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
