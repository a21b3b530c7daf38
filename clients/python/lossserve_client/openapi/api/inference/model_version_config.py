from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.model_version_config_response_200 import ModelVersionConfigResponse200
from ...models.oip_error import OIPError
from ...types import Response


def _get_kwargs(
    model_name: str,
    model_version: str,
) -> dict[str, Any]:

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v2/models/{model_name}/versions/{model_version}/config".format(
            model_name=quote(str(model_name), safe=""),
            model_version=quote(str(model_version), safe=""),
        ),
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ModelVersionConfigResponse200 | OIPError | None:
    if response.status_code == 200:
        response_200 = ModelVersionConfigResponse200.from_dict(response.json())

        return response_200

    if response.status_code == 400:
        response_400 = OIPError.from_dict(response.json())

        return response_400

    if response.status_code == 404:
        response_404 = OIPError.from_dict(response.json())

        return response_404

    if response.status_code == 503:
        response_503 = OIPError.from_dict(response.json())

        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[ModelVersionConfigResponse200 | OIPError]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    model_name: str,
    model_version: str,
    *,
    client: AuthenticatedClient | Client,
) -> Response[ModelVersionConfigResponse200 | OIPError]:
    """Model Version Config

    Args:
        model_name (str):
        model_version (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ModelVersionConfigResponse200 | OIPError]
    """

    kwargs = _get_kwargs(
        model_name=model_name,
        model_version=model_version,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    model_name: str,
    model_version: str,
    *,
    client: AuthenticatedClient | Client,
) -> ModelVersionConfigResponse200 | OIPError | None:
    """Model Version Config

    Args:
        model_name (str):
        model_version (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ModelVersionConfigResponse200 | OIPError
    """

    return sync_detailed(
        model_name=model_name,
        model_version=model_version,
        client=client,
    ).parsed


async def asyncio_detailed(
    model_name: str,
    model_version: str,
    *,
    client: AuthenticatedClient | Client,
) -> Response[ModelVersionConfigResponse200 | OIPError]:
    """Model Version Config

    Args:
        model_name (str):
        model_version (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ModelVersionConfigResponse200 | OIPError]
    """

    kwargs = _get_kwargs(
        model_name=model_name,
        model_version=model_version,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    model_name: str,
    model_version: str,
    *,
    client: AuthenticatedClient | Client,
) -> ModelVersionConfigResponse200 | OIPError | None:
    """Model Version Config

    Args:
        model_name (str):
        model_version (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ModelVersionConfigResponse200 | OIPError
    """

    return (
        await asyncio_detailed(
            model_name=model_name,
            model_version=model_version,
            client=client,
        )
    ).parsed
