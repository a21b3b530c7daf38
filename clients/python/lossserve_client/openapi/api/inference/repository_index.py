from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.oip_error import OIPError
from ...models.repository_index_body import RepositoryIndexBody
from ...models.repository_index_entry import RepositoryIndexEntry
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    body: RepositoryIndexBody | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v2/repository/index",
    }

    if not isinstance(body, Unset):
        _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> OIPError | list[RepositoryIndexEntry] | None:
    if response.status_code == 200:
        response_200 = []
        _response_200 = response.json()
        for response_200_item_data in _response_200:
            response_200_item = RepositoryIndexEntry.from_dict(response_200_item_data)

            response_200.append(response_200_item)

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

    if response.status_code == 413:
        response_413 = OIPError.from_dict(response.json())

        return response_413

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[OIPError | list[RepositoryIndexEntry]]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    body: RepositoryIndexBody | Unset = UNSET,
) -> Response[OIPError | list[RepositoryIndexEntry]]:
    """Repository Index

    Args:
        body (RepositoryIndexBody | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[OIPError | list[RepositoryIndexEntry]]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    body: RepositoryIndexBody | Unset = UNSET,
) -> OIPError | list[RepositoryIndexEntry] | None:
    """Repository Index

    Args:
        body (RepositoryIndexBody | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        OIPError | list[RepositoryIndexEntry]
    """

    return sync_detailed(
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    body: RepositoryIndexBody | Unset = UNSET,
) -> Response[OIPError | list[RepositoryIndexEntry]]:
    """Repository Index

    Args:
        body (RepositoryIndexBody | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[OIPError | list[RepositoryIndexEntry]]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    body: RepositoryIndexBody | Unset = UNSET,
) -> OIPError | list[RepositoryIndexEntry] | None:
    """Repository Index

    Args:
        body (RepositoryIndexBody | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        OIPError | list[RepositoryIndexEntry]
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
        )
    ).parsed
