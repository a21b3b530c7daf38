from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.oip_error import OIPError
from ...models.repository_response import RepositoryResponse
from ...models.shared_memory_register_body import SharedMemoryRegisterBody
from ...types import Response


def _get_kwargs(
    region_name: str,
    *,
    body: SharedMemoryRegisterBody,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v2/systemsharedmemory/region/{region_name}/register".format(
            region_name=quote(str(region_name), safe=""),
        ),
    }

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
) -> Response[OIPError | RepositoryResponse]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    region_name: str,
    *,
    client: AuthenticatedClient | Client,
    body: SharedMemoryRegisterBody,
) -> Response[OIPError | RepositoryResponse]:
    """Shared Memory Register

    Args:
        region_name (str):
        body (SharedMemoryRegisterBody): A region to register: ``byte_size`` bytes from ``offset``
            of the POSIX shared-memory
            object ``key`` on the server's host (system shared memory extension).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[OIPError | RepositoryResponse]
    """

    kwargs = _get_kwargs(
        region_name=region_name,
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    region_name: str,
    *,
    client: AuthenticatedClient | Client,
    body: SharedMemoryRegisterBody,
) -> OIPError | RepositoryResponse | None:
    """Shared Memory Register

    Args:
        region_name (str):
        body (SharedMemoryRegisterBody): A region to register: ``byte_size`` bytes from ``offset``
            of the POSIX shared-memory
            object ``key`` on the server's host (system shared memory extension).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        OIPError | RepositoryResponse
    """

    return sync_detailed(
        region_name=region_name,
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    region_name: str,
    *,
    client: AuthenticatedClient | Client,
    body: SharedMemoryRegisterBody,
) -> Response[OIPError | RepositoryResponse]:
    """Shared Memory Register

    Args:
        region_name (str):
        body (SharedMemoryRegisterBody): A region to register: ``byte_size`` bytes from ``offset``
            of the POSIX shared-memory
            object ``key`` on the server's host (system shared memory extension).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[OIPError | RepositoryResponse]
    """

    kwargs = _get_kwargs(
        region_name=region_name,
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    region_name: str,
    *,
    client: AuthenticatedClient | Client,
    body: SharedMemoryRegisterBody,
) -> OIPError | RepositoryResponse | None:
    """Shared Memory Register

    Args:
        region_name (str):
        body (SharedMemoryRegisterBody): A region to register: ``byte_size`` bytes from ``offset``
            of the POSIX shared-memory
            object ``key`` on the server's host (system shared memory extension).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        OIPError | RepositoryResponse
    """

    return (
        await asyncio_detailed(
            region_name=region_name,
            client=client,
            body=body,
        )
    ).parsed
