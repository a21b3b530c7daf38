from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.oip_error import OIPError
from ...models.repository_model_body import RepositoryModelBody
from ...models.repository_response import RepositoryResponse
from ...types import UNSET, Response, Unset


def _get_kwargs(
    model_name: str,
    *,
    body: RepositoryModelBody | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v2/repository/models/{model_name}/load".format(
            model_name=quote(str(model_name), safe=""),
        ),
    }

    if not isinstance(body, Unset):
        _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> OIPError | RepositoryResponse | None:
    if response.status_code == 200:
        response_200 = RepositoryResponse.from_dict(response.json())

        return response_200

    if response.status_code == 400:
        response_400 = OIPError.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = OIPError.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = OIPError.from_dict(response.json())

        return response_403

    if response.status_code == 404:
        response_404 = OIPError.from_dict(response.json())

        return response_404

    if response.status_code == 413:
        response_413 = OIPError.from_dict(response.json())

        return response_413

    if response.status_code == 503:
        response_503 = OIPError.from_dict(response.json())

        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[OIPError | RepositoryResponse]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    model_name: str,
    *,
    client: AuthenticatedClient,
    body: RepositoryModelBody | Unset = UNSET,
) -> Response[OIPError | RepositoryResponse]:
    """Repository Model Load

    Args:
        model_name (str):
        body (RepositoryModelBody | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[OIPError | RepositoryResponse]
    """

    kwargs = _get_kwargs(
        model_name=model_name,
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    model_name: str,
    *,
    client: AuthenticatedClient,
    body: RepositoryModelBody | Unset = UNSET,
) -> OIPError | RepositoryResponse | None:
    """Repository Model Load

    Args:
        model_name (str):
        body (RepositoryModelBody | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        OIPError | RepositoryResponse
    """

    return sync_detailed(
        model_name=model_name,
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    model_name: str,
    *,
    client: AuthenticatedClient,
    body: RepositoryModelBody | Unset = UNSET,
) -> Response[OIPError | RepositoryResponse]:
    """Repository Model Load

    Args:
        model_name (str):
        body (RepositoryModelBody | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[OIPError | RepositoryResponse]
    """

    kwargs = _get_kwargs(
        model_name=model_name,
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    model_name: str,
    *,
    client: AuthenticatedClient,
    body: RepositoryModelBody | Unset = UNSET,
) -> OIPError | RepositoryResponse | None:
    """Repository Model Load

    Args:
        model_name (str):
        body (RepositoryModelBody | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        OIPError | RepositoryResponse
    """

    return (
        await asyncio_detailed(
            model_name=model_name,
            client=client,
            body=body,
        )
    ).parsed
