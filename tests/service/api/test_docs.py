"""``/docs`` works without the internet: Swagger UI's page and every file it loads come
from the app itself (the swagger-ui-bundle package), none from a CDN."""

from __future__ import annotations

import re

import httpx

from lossserve.core.state import ServiceState

from .conftest import with_client


def test_docs_load_only_the_apps_own_files() -> None:
    async def scenario(client: httpx.AsyncClient, _: ServiceState) -> None:
        page = await client.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        sources = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
        sources += re.findall(r"""url: ?["']([^"']+)["']""", page.text)
        assert sources, page.text
        assert not [s for s in sources if "//" in s], sources  # no http(s):// nor //cdn
        kinds = {}
        for source in sources:
            answer = await client.get(source)
            assert answer.status_code == 200, source
            kinds[source.rsplit(".", 1)[-1]] = answer.headers["content-type"]
        assert kinds["js"].startswith(("text/javascript", "application/javascript"))
        assert kinds["css"].startswith("text/css")
        assert kinds["json"].startswith("application/json")  # the OpenAPI document
        assert (await client.get("/redoc")).status_code == 404  # ReDoc only exists on a CDN

    with_client(scenario)
